"""What every pane run shares, generating or classifying: a pane's result and
its failures, panes grouped by base model, and the adapters a batch runs with.

A pane is a base model with or without an adapter. Panes that share a base
run as one batch, each row with its own adapter (PEFT's mixed adapter
batches); different bases run one after another. A pane that fails gets an
error of its own; the other panes still answer.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from serving.errors import detail_of, sentence

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
    error: str | None = None  # a sentence for everyone; this pane failed, others did not
    error_detail: str | None = None  # operators only: the exception behind `error`


class CallerError(Exception):
    """An exception from the caller's on_progress or should_stop, carried out of
    generate() unchanged: it is not the model's failure, so no pane is retried."""

    def __init__(self, original: Exception):
        super().__init__(str(original))
        self.original = original


def failed(message: str, detail: str = "") -> PaneResult:
    return PaneResult(finish_reason="error", error=message, error_detail=detail or None)


def failed_with(refused: ServingFailure) -> PaneResult:
    return failed(refused.message, refused.detail)


def _failure(exc: Exception, doing: str) -> PaneResult:
    """A pane's error for an exception its batch raised (logged with its traceback)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        free_memory()
        return failed(sentence("out_of_memory"), detail_of(exc))
    logger.error("A pane failed while %s", doing, exc_info=exc)
    return failed(sentence("model_failed", doing=doing), detail_of(exc))


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
    except ServingFailure as refused:
        for index in indices:
            results[index] = failed_with(refused)
        return None, []
    runnable = []
    for index in indices:
        adapter = panes[index].adapter
        if adapter is not None and adapter.name in failures:
            results[index] = failed_with(failures[adapter.name])
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
