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


def _prompt_turns(record: dict) -> list | None:
    """The record's prompt turns when they end with the user's turn, else None."""
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
        return None
    return messages if messages[-1].get("role") == "user" else None


def _answer(text) -> list[dict] | None:
    return [{"role": "assistant", "content": text}] if isinstance(text, str) and text else None


def preference_rows(records: list[dict], *, what: str) -> list[dict]:
    """TRL's conversational preference rows: {"prompt", "chosen", "rejected"},
    each answer one assistant turn after the prompt's turns."""
    rows = []
    for number, record in enumerate(records, start=1):
        prompt = _prompt_turns(record)
        chosen, rejected = _answer(record.get("chosen")), _answer(record.get("rejected"))
        if prompt is None or chosen is None or rejected is None:
            raise TrainingFailure(
                "dataset",
                f"Row {number} of the {what} needs prompt messages ending with the user's "
                "turn, a chosen answer and a rejected answer.",
            )
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def feedback_rows(records: list[dict], *, what: str) -> list[dict]:
    """TRL's conversational unpaired rows: {"prompt", "completion", "label"}
    (label true: a good answer)."""
    rows = []
    for number, record in enumerate(records, start=1):
        prompt, completion = _prompt_turns(record), _answer(record.get("completion"))
        label = record.get("label")
        if prompt is None or completion is None or not isinstance(label, bool):
            raise TrainingFailure(
                "dataset",
                f"Row {number} of the {what} needs prompt messages ending with the user's "
                "turn, an answer and a label of true (good) or false (bad).",
            )
        rows.append({"prompt": prompt, "completion": completion, "label": label})
    return rows


def check_both_kinds(rows: list[dict], *, what: str) -> None:
    """Feedback needs good and bad answers both: KTO learns from the contrast."""
    if len({row["label"] for row in rows}) < 2:
        raise TrainingFailure(
            "dataset",
            f"The {what} needs answers marked good and answers marked bad to learn from; "
            "it has only one kind.",
        )
