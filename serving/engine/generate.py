"""Generating text for several panes at once: each replies to the same chat or
raw prompt, one batched `generate` per base model, every pane's text reported
as it grows (streaming.py) and checked against a stop request at every step.
Classification is classify.py; what both share, panes.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from jobs.vocabulary import CAUSAL_LM
from serving.errors import detail_of, failure, sentence

from .panes import (
    CallerError,
    PaneResult,
    adapter_context,
    adapter_name,
    failed,
    failed_with,
    group_panes,
    prepare_group,
    run_isolated,
)
from .pool import LoadedModel, ModelPool, PaneSpec, ServingFailure
from .streaming import Progress, pane_streamer, stop_when_asked

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 128
    temperature: float = 0.7  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None  # the same seed, panes and prompt give the same output


def generate(
    pool: ModelPool,
    panes: list[PaneSpec],
    *,
    messages: list[dict] | None = None,
    prompt: str | None = None,
    params: GenerationParams,
    on_progress: Callable[[list[str]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[PaneResult]:
    """Generate a reply in every pane to the same chat `messages` or raw `prompt`.

    Calls `on_progress(texts)` after each decoding step with every pane's
    text so far (texts only grow), and once at the end with the final texts.
    Checks `should_stop()` at every step; when it says so the panes end
    where they are (finish_reason "stop"). Raises ServingFailure("bad_input")
    for a request no model could answer; every other failure is a pane's.
    """
    _check_request(messages, prompt, params)
    started = time.perf_counter()
    results = [PaneResult() for _ in panes]
    progress = Progress(len(panes), on_progress)
    try:
        for spec, indices in group_panes(panes):
            if should_stop is not None and should_stop():
                break
            with pool.lock:
                loaded, prompt_ids, runnable = _ready_group(
                    pool, spec, panes, indices, results, messages=messages, prompt=prompt
                )
                if not runnable:
                    continue
                run = GroupRun(
                    loaded, prompt_ids, params,
                    progress=progress, started=started, should_stop=should_stop,
                )  # fmt: skip
                run.generate_isolated([(i, adapter_name(panes[i])) for i in runnable], results)
        progress.finish([result.text for result in results])
    except CallerError as error:
        raise error.original from None
    return results


def _ready_group(pool, spec, panes, indices, results, *, messages, prompt):
    """A group's loaded model, prompt ids and the panes that can run; the others get errors."""
    loaded, runnable = prepare_group(pool, spec, panes, indices, results)
    if not runnable:
        return None, None, []
    if spec.task != CAUSAL_LM:
        for index in runnable:
            results[index] = failed(sentence("not_a_generator"))
        return None, None, []
    try:
        prompt_ids = encode_request(loaded, messages, prompt)
    except ServingFailure as refused:
        for index in runnable:
            results[index] = failed_with(refused)
        return None, None, []
    return loaded, prompt_ids, runnable


def _check_request(messages, prompt, params: GenerationParams) -> None:
    if (messages is None) == (prompt is None):
        raise failure("bad_input", "messages_and_prompt")
    if prompt is not None and not prompt:
        raise failure("bad_input", "empty_prompt")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            raise failure("bad_input", "no_messages")
        for number, message in enumerate(messages, start=1):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise failure("bad_input", "bad_role", number=number)
            if not isinstance(message.get("content"), str):
                raise failure("bad_input", "content_not_text", number=number)
    if params.max_new_tokens < 1:
        raise failure("bad_input", "no_new_tokens")
    if params.temperature < 0 or not 0 < params.top_p <= 1:
        raise failure("bad_input", "bad_sampling")


def encode_request(loaded: LoadedModel, messages, prompt) -> list[int]:
    """The prompt's token ids: chat messages through the base's chat template, or raw text."""
    tokenizer = loaded.tokenizer
    if messages is not None:
        if not tokenizer.chat_template:
            raise failure("bad_input", "no_chat_template")
        try:
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:  # the template's own raise_exception() (jinja2 TemplateError)
            raise failure("bad_input", "chat_template_refused", detail=detail_of(exc)) from exc
        # The template writes the special tokens itself.
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(prompt)["input_ids"]
    limit = loaded.max_positions
    if limit is not None and len(ids) >= limit:
        raise failure("bad_input", "prompt_too_long", tokens=len(ids), limit=limit)
    return ids


class GroupRun:
    """One prompt through one base model, for some of its panes."""

    def __init__(self, loaded, prompt_ids, params, *, progress, started, should_stop):
        self.loaded = loaded
        self.prompt_ids = prompt_ids
        self.params = params
        self.progress = progress
        self.started = started
        self.should_stop = should_stop

    def generate_isolated(self, rows: list[tuple[int, str]], results: list[PaneResult]) -> None:
        run_isolated(self.generate_batch, rows, results, "generating")

    def generate_batch(self, rows: list[tuple[int, str]], results: list[PaneResult]) -> None:
        import torch
        from transformers import StoppingCriteriaList

        loaded, params = self.loaded, self.params
        tokenizer = loaded.tokenizer
        max_new_tokens = params.max_new_tokens
        if loaded.max_positions is not None:
            max_new_tokens = min(max_new_tokens, loaded.max_positions - len(self.prompt_ids))
        # One prompt for every row: no padding needed.
        input_ids = torch.tensor([self.prompt_ids] * len(rows), device=loaded.device())
        streamer = pane_streamer(
            tokenizer,
            [index for index, _ in rows],
            set(loaded.stop_token_ids),
            self.progress,
            self.started,
        )
        kwargs = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": max_new_tokens,
            "eos_token_id": loaded.stop_token_ids or None,
            "pad_token_id": tokenizer.pad_token_id,
            "streamer": streamer,
        }
        if self.should_stop is not None:
            kwargs["stopping_criteria"] = StoppingCriteriaList([stop_when_asked(self.should_stop)])
        kwargs.update(sampling_arguments(params))
        adapter_kwargs, context = adapter_context(loaded, [name for _, name in rows])
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode(), context:
            loaded.model.generate(**kwargs, **adapter_kwargs)
        for row in streamer.rows:
            results[row.pane] = row.result(
                tokenizer, prompt_tokens=len(self.prompt_ids), max_new_tokens=max_new_tokens,
                started=self.started,
            )  # fmt: skip


def sampling_arguments(params: GenerationParams) -> dict:
    if params.temperature == 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    # top_k 0: plain nucleus sampling, not the top 50 that generation configs default to.
    return {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
