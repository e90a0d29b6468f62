"""Inference under /v1/: models, chat completions and completions, as OpenAI serves them.

The views only translate: models come from `names`, requests are checked and
recorded by `generations`, and answers are followed with `streams.follow`,
like the playground's. Nothing here imports the inference engine. Tokens,
methods and errors are `http`'s, as for every /v1/ endpoint.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.http import JsonResponse, StreamingHttpResponse

from jobs.models import ModelTask
from serving.errors import sentence
from serving.models import Generation, GenerationSource
from serving.openai.http import (
    OpenAIError,
    answered_in_openai_shape,
    openai_endpoint,
    read_json_body,
)
from serving.services import generations, names, streams
from serving.services.generations import GenerationRequest, InvalidRequest
from serving.services.names import ServedModel, UnknownModel

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

# check_request names fields as the playground does; clients know them by these.
CHAT_FIELDS = {"models": "model", "text": "messages"}
COMPLETION_FIELDS = {"models": "model", "text": "prompt"}


# --- errors ---------------------------------------------------------------------------------


def _model_not_found(exc: UnknownModel) -> OpenAIError:
    return OpenAIError(404, exc.message, param="model", code="model_not_found")


def _invalid(exc: InvalidRequest, fields: dict[str, str]) -> OpenAIError:
    return OpenAIError(400, exc.message, param=fields.get(exc.field, exc.field))


# --- models --------------------------------------------------------------------------------


def model_object(served: ServedModel) -> dict:
    if served.job is None:
        created = 0  # the catalog keeps no date for a base model
    else:
        created = int((served.job.finished_at or served.job.created_at).timestamp())
    return {"id": served.name, "object": "model", "created": created, "owned_by": served.owner_name}


def _models_page(user) -> dict:
    return {"object": "list", "data": [model_object(s) for s in names.servable_models(user)]}


def _model_page(user, model: str) -> dict:
    try:
        return model_object(names.resolve_model(user, model))
    except UnknownModel as exc:
        raise _model_not_found(exc) from None


@openai_endpoint("GET")
async def models_list(request, user):
    return JsonResponse(await sync_to_async(_models_page)(user))


@openai_endpoint("GET")
async def model_detail(request, user, model: str):
    return JsonResponse(await sync_to_async(_model_page)(user, model))


# --- reading completion requests ------------------------------------------------------------


@dataclass
class Ask:
    """A chat or text completion request as read from its body."""

    chat: bool
    request: GenerationRequest
    stream: bool
    include_usage: bool

    @property
    def fields(self) -> dict[str, str]:
        return CHAT_FIELDS if self.chat else COMPLETION_FIELDS


def _read_common(data: dict) -> tuple[str, dict, bool, bool]:
    """model, checked parameters, stream and include_usage; OpenAIError (400)."""
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise OpenAIError(400, "model: name a model (GET /v1/models lists them).", param="model")
    n = data.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise OpenAIError(400, "n: only 1 is supported (one answer per request).", param="n")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise OpenAIError(400, "stream: must be true or false.", param="stream")
    options = data.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise OpenAIError(
            400,
            'stream_options: must be an object such as {"include_usage": true}.',
            param="stream_options",
        )
    # Newer clients say max_completion_tokens; older ones (and /v1/completions) max_tokens.
    limit = "max_tokens"
    if data.get("max_completion_tokens") is not None:
        limit = "max_completion_tokens"
    try:
        params = generations.read_params(data, names={"max_new_tokens": limit})
    except InvalidRequest as exc:
        raise _invalid(exc, {}) from None
    return model, params, bool(stream), bool((options or {}).get("include_usage"))


def read_chat_request(data: dict) -> Ask:
    model, params, stream, include_usage = _read_common(data)
    request = GenerationRequest(models=[model], messages=data.get("messages"), params=params)
    if not isinstance(request.messages, list) or not request.messages:
        raise OpenAIError(
            400, "messages: must be a non-empty list of {role, content} objects.", param="messages"
        )
    return Ask(chat=True, request=request, stream=stream, include_usage=include_usage)


def read_completion_request(data: dict) -> Ask:
    model, params, stream, include_usage = _read_common(data)
    prompt = data.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise OpenAIError(
            400, "prompt: must be a string (or a list of one string).", param="prompt"
        )
    request = GenerationRequest(models=[model], text=prompt, params=params)
    return Ask(chat=False, request=request, stream=stream, include_usage=include_usage)


def start_generation(user, ask: Ask) -> Generation:
    """Check the request for `user` and record it; OpenAIError (404, 400, and
    403 `insufficient_quota` past the day's tokens)."""
    try:
        checked = generations.check_request(user, ask.request)
    except UnknownModel as exc:
        raise _model_not_found(exc) from None
    except InvalidRequest as exc:
        raise _invalid(exc, ask.fields) from None
    with answered_in_openai_shape():
        return generations.create_generation(user, checked, source=GenerationSource.API)


# --- writing answers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def usage(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def _generation_failed(message: str, detail: str = "") -> OpenAIError:
    return OpenAIError(503, message, type="server_error", code="generation_failed", detail=detail)


def answer_of(done: dict, task: str) -> Answer:
    """The answer in a generation.done message (as its asker may read it:
    `generations.done_as_seen_by`); OpenAIError (503) when there is none."""
    if done["status"] == "failed":
        message = done.get("error") or sentence("generation_failed")
        raise _generation_failed(message, done.get("error_detail") or "")
    if done["status"] == "cancelled":
        raise _generation_failed(sentence("generation_cancelled"))
    result = done["results"][0]
    if result.get("error"):
        raise _generation_failed(result["error"], result.get("error_detail") or "")
    # A classifier's answer is its predicted label.
    text = result.get("label") if task == ModelTask.SEQUENCE_CLASSIFICATION else result.get("text")
    return Answer(
        text=text or "",
        finish_reason=result.get("finish_reason") or "stop",
        prompt_tokens=result.get("prompt_tokens") or 0,
        completion_tokens=result.get("completion_tokens") or 0,
    )


class Reply:
    """One generation's answer in the shape of the endpoint that asked for it."""

    def __init__(self, ask: Ask, generation: Generation):
        self.chat = ask.chat
        self.id = ("chatcmpl-" if ask.chat else "cmpl-") + generation.pk.hex
        self.created = int(generation.created_at.timestamp())
        self.model = generation.panes[0]["model"]
        self.task = generation.task

    def _envelope(self, obj: str, choices: list, **extra) -> dict:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }

    def body(self, answer: Answer) -> dict:
        if self.chat:
            choice = {
                "index": 0,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
                "message": {"role": "assistant", "content": answer.text, "refusal": None},
            }
            return self._envelope(
                "chat.completion", [choice], usage=answer.usage, system_fingerprint=None
            )
        choice = {
            "text": answer.text,
            "index": 0,
            "logprobs": None,
            "finish_reason": answer.finish_reason,
        }
        return self._envelope(
            "text_completion", [choice], usage=answer.usage, system_fingerprint=None
        )

    def chunk(self, text: str | None = None, *, role=False, finish_reason=None) -> dict:
        if self.chat:
            delta = {"role": "assistant", "content": ""} if role else {}
            if text is not None:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return self._envelope("chat.completion.chunk", [choice], system_fingerprint=None)
        choice = {"text": text or "", "index": 0, "logprobs": None, "finish_reason": finish_reason}
        return self._envelope("text_completion", [choice], system_fingerprint=None)

    def usage_chunk(self, answer: Answer) -> dict:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        return self._envelope(obj, [], usage=answer.usage, system_fingerprint=None)


async def wait_for_answer(generation: Generation, user) -> Answer:
    """Follow the generation to its end. If the client goes away, the view is
    cancelled and closing `follow` cancels the generation."""
    async with aclosing(streams.follow(generation.pk)) as messages:
        async for message in messages:
            if message["type"] == "generation.done":
                return answer_of(generations.done_as_seen_by(user, message), generation.task)
    raise _generation_failed(sentence("no_answer"))


def sendable(text: str, stops: list[str]) -> str:
    """The part of a growing text that can be sent for good: the worker cuts
    the text at a stop sequence only once the whole of it has appeared, so a
    tail that may be its beginning waits; so does a half-decoded character."""
    held = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), held, -1):
            if text.endswith(stop[:size]):
                held = size
                break
    text = text[: len(text) - held]
    return text.rstrip("\ufffd")


def sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def stream_answer(generation: Generation, reply: Reply, ask: Ask, user) -> AsyncIterator[str]:
    """Server-sent events: deltas of the growing text, the finish reason, the
    usage when asked for, then [DONE]; an error event instead when it fails.

    When the client goes away Django cancels the response; the cancellation
    lands in `follow` (almost always waiting there), which cancels the
    generation. Landing at a `yield` instead, it leaves this generator to be
    closed when collected, with the same effect."""
    if reply.chat:
        yield sse(reply.chunk(role=True))
    stops = generation.params.get("stop") or []
    sent = ""
    async with aclosing(streams.follow(generation.pk)) as messages:
        async for message in messages:
            if message["type"] == "generation.progress":
                text = sendable(message["texts"][0], stops)
                if len(text) > len(sent) and text.startswith(sent):
                    yield sse(reply.chunk(text[len(sent) :]))
                    sent = text
            elif message["type"] == "generation.done":
                try:
                    answer = answer_of(generations.done_as_seen_by(user, message), generation.task)
                except OpenAIError as exc:
                    yield sse(exc.body)
                    return
                if len(answer.text) > len(sent) and answer.text.startswith(sent):
                    yield sse(reply.chunk(answer.text[len(sent) :]))
                yield sse(reply.chunk(finish_reason=answer.finish_reason))
                if ask.include_usage:
                    yield sse(reply.usage_chunk(answer))
                yield sse("[DONE]")
                return
    yield sse(_generation_failed(sentence("no_answer")).body)


async def _complete(user, ask: Ask):
    generation = await sync_to_async(start_generation)(user, ask)
    reply = Reply(ask, generation)
    if ask.stream:
        return StreamingHttpResponse(
            stream_answer(generation, reply, ask, user),
            content_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    return JsonResponse(reply.body(await wait_for_answer(generation, user)))


@openai_endpoint("POST")
async def chat_completions(request, user):
    return await _complete(user, read_chat_request(read_json_body(request)))


@openai_endpoint("POST")
async def completions(request, user):
    return await _complete(user, read_completion_request(read_json_body(request)))
