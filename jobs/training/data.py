"""Canonical JSONL files into the rows the trainers take.

The files were validated when the dataset was imported; this module still
refuses what would make a run meaningless (no rows, a broken line, a label
the training file never shows) with a TrainingFailure("dataset", ...).
"""

from __future__ import annotations

import json
from pathlib import Path

from .contract import TrainingFailure, short_cause


def read_records(path: Path, *, what: str) -> list[dict]:
    """Every record of a JSONL file; `what` names the file in messages ("training file")."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingFailure(
            "dataset",
            f"The worker could not read the job's {what}: tell an operator.",
            detail=short_cause(exc),
        ) from exc
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise TrainingFailure(
                "dataset", f"Line {number} of the {what} is not valid JSON: {exc.msg}."
            ) from exc
        if not isinstance(record, dict):
            raise TrainingFailure("dataset", f"Line {number} of the {what} is not a JSON object.")
        records.append(record)
    if not records:
        raise TrainingFailure("dataset", f"The {what} has no rows.")
    return records


def chat_rows(records: list[dict], *, what: str, prompt_completion: bool) -> list[dict]:
    """Conversational rows for TRL: {"messages"} or, for completion-only loss on
    templates without generation markers, {"prompt", "completion"} with the
    last (assistant) turn as the completion."""
    rows = []
    for number, record in enumerate(records, start=1):
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            raise TrainingFailure("dataset", f"Row {number} of the {what} has no messages.")
        if prompt_completion:
            if messages[-1].get("role") != "assistant" or len(messages) < 2:
                raise TrainingFailure(
                    "dataset", f"Row {number} of the {what} does not end with an assistant message."
                )
            rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
        else:
            rows.append({"messages": messages})
    return rows


def is_plain_text(records: list[dict]) -> bool:
    """Whether every record is one assistant message and nothing else: a plain
    text dataset (datasets_app's text format), which has no prompt to leave
    out of the loss."""
    return all(
        isinstance(messages := record.get("messages"), list)
        and len(messages) == 1
        and isinstance(messages[0], dict)
        and messages[0].get("role") == "assistant"
        for record in records
    )


def classification_rows(records: list[dict], *, what: str) -> list[dict]:
    rows = []
    for number, record in enumerate(records, start=1):
        text, label = record.get("text"), record.get("label")
        if not isinstance(text, str) or not isinstance(label, str):
            raise TrainingFailure(
                "dataset", f"Row {number} of the {what} needs a text and a label."
            )
        rows.append({"text": text, "label": label})
    return rows


def label_list(train_rows: list[dict]) -> list[str]:
    """The labels the model learns, in the order of its output units."""
    labels = sorted({row["label"] for row in train_rows})
    if len(labels) < 2:
        raise TrainingFailure(
            "dataset", "The training file needs at least two different labels to learn from."
        )
    return labels


def check_labels(rows: list[dict], labels: list[str], *, what: str) -> None:
    unknown = sorted({row["label"] for row in rows} - set(labels))
    if unknown:
        raise TrainingFailure(
            "dataset",
            f"The {what} has labels the training file never shows: {', '.join(unknown[:5])}.",
        )
