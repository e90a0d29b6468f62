"""Classifying a text for several panes at once: every pane's label
probabilities, one batched forward pass per base model. What it shares with
generation (results, failures, grouping, adapters) is panes.py.
"""

from __future__ import annotations

import functools
import time

from jobs.vocabulary import SEQUENCE_CLASSIFICATION
from serving.errors import failure, sentence

from .panes import (
    PaneResult,
    adapter_context,
    adapter_name,
    failed,
    group_panes,
    prepare_group,
    run_isolated,
)
from .pool import LoadedModel, ModelPool, PaneSpec


def classify(pool: ModelPool, panes: list[PaneSpec], *, text: str) -> list[PaneResult]:
    """Every pane's label probabilities for `text` (one batch per base).

    Raises ServingFailure("bad_input") for an empty text; other failures are panes'.
    """
    if not text.strip():
        raise failure("bad_input", "empty_text")
    started = time.perf_counter()
    results = [PaneResult() for _ in panes]
    for spec, indices in group_panes(panes):
        with pool.lock:
            loaded, runnable = prepare_group(pool, spec, panes, indices, results)
            if not runnable:
                continue
            if spec.task != SEQUENCE_CLASSIFICATION:
                for index in runnable:
                    results[index] = failed(sentence("not_a_classifier"))
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
