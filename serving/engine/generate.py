"""The playground's inference: generate text or classify it, for several panes at once.

A pane is a base model with or without an adapter. Panes that share a base
run as one batch, each row with its own adapter (PEFT's mixed adapter
batches); different bases run one after another. A pane that fails gets an
error of its own; the other panes still answer.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from jobs.training.api import short_cause

from .pool import (
    BASE_ADAPTER,
    LoadedModel,
    ModelPool,
    ModelSpec,
    PaneSpec,
    ServingFailure,
    free_memory,
)

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
OUT_OF_MEMORY = "The model ran out of memory; try fewer panes or fewer new tokens."


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 128
    temperature: float = 0.7  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None  # the same seed, panes and prompt give the same output


@dataclass
class PaneResult:
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0  # generated tokens, the end-of-turn token included
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    first_token_seconds: float | None = None  # from the call's start
    seconds: float = 0.0  # from the call's start to the pane's last token
    tokens_per_second: float | None = None  # decoding speed after the first token
    probabilities: dict[str, float] | None = None  # classification: label -> p, head order
    label: str | None = None  # classification: the most probable label
    error: str | None = None  # a sentence for the user; this pane failed, others did not


class CallerError(Exception):
    """An exception from the caller's on_progress or should_stop, carried out of
    generate() unchanged: it is not the model's failure, so no pane is retried."""

    def __init__(self, original: Exception):
        super().__init__(str(original))
        self.original = original


def failed(message: str) -> PaneResult:
    return PaneResult(finish_reason="error", error=message)


def _failure(exc: Exception, doing: str) -> PaneResult:
    """A pane's error for an exception its batch raised (logged with its traceback)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        free_memory()
        return failed(OUT_OF_MEMORY)
    logger.error("A pane failed while %s", doing, exc_info=exc)
    return failed(f"The model failed while {doing}: {short_cause(exc)}.")


def group_panes(panes: list[PaneSpec]) -> list[tuple[ModelSpec, list[int]]]:
    """Pane indices by base model, bases in order of first appearance."""
    groups: dict[ModelSpec, list[int]] = {}
    for index, pane in enumerate(panes):
        groups.setdefault(pane.model, []).append(index)
    return list(groups.items())


def prepare_group(pool: ModelPool, spec: ModelSpec, panes: list[PaneSpec], indices, results):
    """Load a group's base and adapters; panes that cannot run get their error.

    Returns the loaded model and the indices that can run (None, [] when none can).
    """
    adapters = list(
        {p.adapter.name: p.adapter for i in indices if (p := panes[i]).adapter}.values()
    )
    try:
        loaded, failures = pool.prepare(spec, adapters)
    except ServingFailure as failure:
        for index in indices:
            results[index] = failed(failure.message)
        return None, []
    runnable = []
    for index in indices:
        adapter = panes[index].adapter
        if adapter is not None and adapter.name in failures:
            results[index] = failed(failures[adapter.name])
        else:
            runnable.append(index)
    return loaded, runnable


def adapter_name(pane: PaneSpec) -> str:
    return pane.adapter.name if pane.adapter else BASE_ADAPTER


def adapter_context(loaded: LoadedModel, names: list[str]):
    """How to run rows with these adapters: kwargs for the call, and a context to run it in.

    One adapter for every row takes PEFT's plain path (set_adapter, or
    disable_adapter for the base); a mix of adapters, the mixed-batch path.
    """
    if not loaded.has_adapters_support:
        return {}, contextlib.nullcontext()
    if len(set(names)) > 1:
        return {"adapter_names": names}, contextlib.nullcontext()
    if names[0] == BASE_ADAPTER:
        return {}, loaded.model.disable_adapter()
    loaded.model.set_adapter(names[0])
    return {}, contextlib.nullcontext()


# --- generation -----------------------------------------------------------------------------


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
    if spec.task != "causal-lm":
        for index in runnable:
            results[index] = failed("This model classifies text; it cannot generate.")
        return None, None, []
    try:
        prompt_ids = encode_request(loaded, messages, prompt)
    except ServingFailure as failure:
        for index in runnable:
            results[index] = failed(failure.message)
        return None, None, []
    return loaded, prompt_ids, runnable


def _check_request(messages, prompt, params: GenerationParams) -> None:
    if (messages is None) == (prompt is None):
        raise ServingFailure("bad_input", "Send either chat messages or a prompt, not both.")
    if prompt is not None and not prompt:
        raise ServingFailure("bad_input", "The prompt is empty.")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            raise ServingFailure("bad_input", "The conversation has no messages.")
        for number, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise ServingFailure(
                    "bad_input",
                    f"Message {number + 1}: the role must be system, user or assistant.",
                )
            if not isinstance(message.get("content"), str):
                raise ServingFailure(
                    "bad_input", f"Message {number + 1}: the content must be text."
                )
    if params.max_new_tokens < 1:
        raise ServingFailure("bad_input", "Ask for at least one new token.")
    if params.temperature < 0 or not 0 < params.top_p <= 1:
        raise ServingFailure(
            "bad_input", "The temperature must be 0 or more and top-p between 0 and 1."
        )


def encode_request(loaded: LoadedModel, messages, prompt) -> list[int]:
    """The prompt's token ids: chat messages through the base's chat template, or raw text."""
    tokenizer = loaded.tokenizer
    if messages is not None:
        if not tokenizer.chat_template:
            raise ServingFailure(
                "bad_input", "This model has no chat template; send a plain prompt instead."
            )
        try:
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:  # the template's own raise_exception() (jinja2 TemplateError)
            raise ServingFailure(
                "bad_input",
                f"This model's chat template refused the conversation: {short_cause(exc)}.",
            ) from exc
        # The template writes the special tokens itself.
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(prompt)["input_ids"]
    limit = loaded.max_positions
    if limit is not None and len(ids) >= limit:
        raise ServingFailure(
            "bad_input",
            f"The prompt is {len(ids):,} tokens long; this model reads at most {limit:,} "
            "including its answer.",
        )
    return ids


def run_isolated(run_batch, rows: list[tuple[int, str]], results: list[PaneResult], doing: str
                 ) -> None:  # fmt: skip
    """`run_batch(rows, results)` for all rows at once; if that fails, for each row
    alone, so that only the rows that fail get an error. A CallerError (the
    caller's own callback failed) is not a pane's failure and passes through."""
    try:
        run_batch(rows, results)
        return
    except CallerError:
        raise
    except Exception as exc:
        if len(rows) == 1:
            results[rows[0][0]] = _failure(exc, doing)
            return
        logger.warning(
            "A batch of %d panes failed; retrying them one by one", len(rows), exc_info=exc
        )
    for row in rows:
        try:
            run_batch([row], results)
        except CallerError:
            raise
        except Exception as exc:
            results[row[0]] = _failure(exc, doing)


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


class Progress:
    """Every pane's text so far, reported to `callback` whenever one grew."""

    def __init__(self, count: int, callback: Callable[[list[str]], None] | None):
        self.texts = [""] * count
        self.callback = callback
        self.changed = False

    def update(self, pane: int, text: str) -> None:
        # A trailing U+FFFD is a UTF-8 character cut between tokens: hold it
        # back until its last byte arrives, so the text only ever grows.
        text = text.rstrip("\ufffd")
        if len(text) > len(self.texts[pane]) and text.startswith(self.texts[pane]):
            self.texts[pane] = text
            self.changed = True

    def report(self) -> None:
        if self.changed and self.callback is not None:
            try:
                self.callback(list(self.texts))
            except Exception as exc:
                raise CallerError(exc) from exc
        self.changed = False

    def finish(self, texts: list[str]) -> None:
        """The final texts, which may add a held-back character (or, after a failed
        batch retried pane by pane, replace what was streamed)."""
        if texts != self.texts:
            self.texts = list(texts)
            self.changed = True
        self.report()


class PaneRow:
    """One row of a batch: the tokens generated for one pane."""

    def __init__(self, pane: int):
        self.pane = pane
        self.tokens: list[int] = []  # every generated token, the stop token included
        self.text_tokens: list[int] = []  # the tokens of the reply
        self.stopped = False  # hit eos or end of turn
        self.first: float | None = None
        self.last: float | None = None

    def result(self, tokenizer, *, prompt_tokens, max_new_tokens, started) -> PaneResult:
        count = len(self.tokens)
        speed = None
        if count > 1 and self.last > self.first:
            speed = round((count - 1) / (self.last - self.first), 2)
        return PaneResult(
            text=tokenizer.decode(self.text_tokens, skip_special_tokens=True),
            prompt_tokens=prompt_tokens,
            completion_tokens=count,
            finish_reason="length" if not self.stopped and count >= max_new_tokens else "stop",
            first_token_seconds=None if self.first is None else self.first - started,
            seconds=(self.last or time.perf_counter()) - started,
            tokens_per_second=speed,
        )


class PaneStreamer:
    """A streamer for a batch: one token per row per step, row i to pane i.

    (transformers' TextIteratorStreamer takes a batch of one only.) Used
    through `pane_streamer`, which makes it a transformers BaseStreamer.
    """

    def __init__(self, tokenizer, panes: list[int], stop_ids: set[int], progress, started):
        self.tokenizer = tokenizer
        self.rows = [PaneRow(pane) for pane in panes]
        self.stop_ids = stop_ids
        self.progress = progress
        self.started = started
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:
            # generate() hands the streamer the prompt first.
            self.prompt_seen = True
            return
        now = time.perf_counter()
        for row, token in zip(self.rows, value.tolist(), strict=True):
            if row.stopped:
                continue  # finished rows get padding from here on
            row.tokens.append(token)
            row.first = row.first or now
            row.last = now
            if token in self.stop_ids:
                row.stopped = True
                continue
            row.text_tokens.append(token)
            text = self.tokenizer.decode(row.text_tokens, skip_special_tokens=True)
            self.progress.update(row.pane, text)
        self.progress.report()

    def end(self) -> None:
        pass


class StopWhenAsked:
    """Ends every row once should_stop() says so (through `stop_when_asked`)."""

    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        try:
            stop = bool(self.should_stop())
        except Exception as exc:
            raise CallerError(exc) from exc
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


# transformers' base classes, mixed in on first use so that importing this
# module does not import transformers.
@functools.cache
def _transformers_classes():
    from transformers import StoppingCriteria
    from transformers.generation.streamers import BaseStreamer

    streamer = type("PaneStreamer", (PaneStreamer, BaseStreamer), {})
    criteria = type("StopWhenAsked", (StopWhenAsked, StoppingCriteria), {})
    return streamer, criteria


def pane_streamer(*args) -> PaneStreamer:
    return _transformers_classes()[0](*args)


def stop_when_asked(should_stop: Callable[[], bool]) -> StopWhenAsked:
    return _transformers_classes()[1](should_stop)


# --- classification ---------------------------------------------------------------------------


def classify(pool: ModelPool, panes: list[PaneSpec], *, text: str) -> list[PaneResult]:
    """Every pane's label probabilities for `text` (one batch per base).

    Raises ServingFailure("bad_input") for an empty text; other failures are panes'.
    """
    if not text.strip():
        raise ServingFailure("bad_input", "The text to classify is empty.")
    started = time.perf_counter()
    results = [PaneResult() for _ in panes]
    for spec, indices in group_panes(panes):
        with pool.lock:
            loaded, runnable = prepare_group(pool, spec, panes, indices, results)
            if not runnable:
                continue
            if spec.task != "sequence-classification":
                for index in runnable:
                    results[index] = failed("This model generates text; it does not classify.")
                continue
            rows = [(index, adapter_name(panes[index])) for index in runnable]
            run_isolated(
                functools.partial(_classify_rows, loaded, text, started=started),
                rows,
                results,
                "classifying the text",
            )
    return results


def label_probabilities(loaded: LoadedModel, texts: list[str], names: list[str]):
    """Softmax over the head's labels, one row per (text, adapter name)."""
    import torch

    encoded = loaded.tokenizer(
        texts,
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=min(loaded.max_positions or 512, 512),
    ).to(loaded.device())
    adapter_kwargs, context = adapter_context(loaded, names)
    with torch.inference_mode(), context:
        logits = loaded.model(**encoded, **adapter_kwargs).logits
    return logits.float().softmax(dim=-1).cpu()


def _classify_rows(loaded, text, rows, results, started) -> None:
    names = [name for _, name in rows]
    probabilities = label_probabilities(loaded, [text] * len(rows), names)
    prompt_tokens = len(loaded.tokenizer(text, truncation=True, max_length=512)["input_ids"])
    seconds = time.perf_counter() - started
    for (index, _), row in zip(rows, probabilities.tolist(), strict=True):
        by_label = dict(zip(loaded.labels, row, strict=True))
        results[index] = PaneResult(
            prompt_tokens=prompt_tokens,
            seconds=seconds,
            probabilities=by_label,
            label=max(by_label, key=by_label.get),
        )
