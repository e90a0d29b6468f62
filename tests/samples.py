"""The bundled sample datasets as rows, and offline Hugging Face, for engine tests."""

import csv
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROUTING = ROOT / "datasets_app" / "samples" / "support-routing"
SENTIMENT = ROOT / "datasets_app" / "samples" / "sentiment"


@pytest.fixture(autouse=True, scope="module")
def offline():
    """Import it into a module: the demo models are offline, and nothing is fetched."""
    from huggingface_hub import constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        # huggingface_hub reads the variable once, at import: set its constant too.
        patch.setattr(constants, "HF_HUB_OFFLINE", True)
        yield


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def routing_rows(name: str, rows: int) -> list[dict]:
    """The first `rows` chat records of the routing sample's `name` file."""
    with (ROUTING / f"{name}.jsonl").open() as lines:
        return [json.loads(line) for _, line in zip(range(rows), lines, strict=False)]


def sentiment_rows(name: str, rows: int) -> list[dict]:
    """The first `rows` {text, label} records of the sentiment sample's `name` file."""
    with (SENTIMENT / f"{name}.csv").open(newline="") as handle:
        return [
            {"text": row["text"], "label": row["label"]}
            for _, row in zip(range(rows), csv.DictReader(handle), strict=False)
        ]
