"""The bundled sample datasets: generated deterministically, balanced, well-formed,
with held-out files that share no row with train. Fast: no training here (the
learnability recipe and its numbers are in datasets_app/samples/README.md)."""

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from datasets_app.samples import SAMPLES, SAMPLES_DIR, get_sample

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "make_sample_datasets.py"
TEAMS = {"billing", "shipping", "technical", "account"}


def normalise(text):
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def read_csv(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def data_files(folder):
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.suffix in {".csv", ".jsonl"}
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], check=True, timeout=120)
    return out


def test_checked_in_files_are_exactly_what_the_generator_writes(generated):
    assert data_files(generated) == data_files(SAMPLES_DIR)
    for relative in data_files(generated):
        assert (SAMPLES_DIR / relative).read_bytes() == (generated / relative).read_bytes(), (
            f"{relative} is stale: run .venv/bin/python scripts/make_sample_datasets.py"
        )


def test_a_second_run_is_byte_identical(generated, tmp_path):
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True)
    for relative in data_files(generated):
        assert (tmp_path / relative).read_bytes() == (generated / relative).read_bytes()


def test_the_registry_lists_the_samples_by_slug():
    assert [s.slug for s in SAMPLES] == ["sentiment", "support-routing", "support-preferences"]
    assert get_sample("no-such-sample") is None


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.slug)
def test_the_registry_points_at_files_that_exist(sample):
    assert sample.train_file.is_file()
    assert sample.validation_file.is_file()
    assert sample.train_file != sample.validation_file
    assert sample.task in {"classification", "generation", "preference"}
    assert sample.suggested_model in {"minilm-l6", "tailor-tiny"}
    assert sample.name
    assert sample.description
    assert get_sample(sample.slug) is sample


def test_the_registry_imports_neither_django_nor_torch():
    code = (
        "import sys, datasets_app.samples; "
        "bad = {'django', 'torch', 'transformers'} & set(sys.modules); "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_sentiment_is_a_balanced_csv_with_a_separate_held_out_file():
    sample = get_sample("sentiment")
    for path in (sample.train_file, sample.validation_file):
        assert path.read_text(encoding="utf-8").splitlines()[0] == "text,label"
    train, validation = read_csv(sample.train_file), read_csv(sample.validation_file)
    assert len(train) == 1200
    assert len(validation) == 200
    assert Counter(r["label"] for r in train) == {"positive": 600, "negative": 600}
    assert Counter(r["label"] for r in validation) == {"positive": 100, "negative": 100}
    assert all(r["text"].strip() == r["text"] and r["text"] for r in train + validation)


def test_sentiment_rows_are_unique_and_held_out_rows_are_not_in_train():
    sample = get_sample("sentiment")
    train = [normalise(r["text"]) for r in read_csv(sample.train_file)]
    validation = [normalise(r["text"]) for r in read_csv(sample.validation_file)]
    assert len(set(train)) == len(train)
    assert len(set(validation)) == len(validation)
    assert not set(train) & set(validation)


def test_sentiment_is_varied_rather_than_one_template():
    texts = [r["text"] for r in read_csv(get_sample("sentiment").train_file)]
    words = [len(t.split()) for t in texts]
    assert min(words) <= 3
    assert max(words) >= 30
    vocabulary = {w for t in texts for w in normalise(t).split()}
    assert len(vocabulary) > 1000
    lowered = " ".join(texts).lower()
    for phrase in ("not bad at all", "i wanted to love", "but", "never", "wouldn't"):
        assert phrase in lowered


@pytest.mark.parametrize("which", ["train_file", "validation_file"])
def test_every_chat_row_has_the_canonical_shape(which):
    rows = read_jsonl(getattr(get_sample("support-routing"), which))
    for row in rows:
        assert set(row) == {"messages"}
        messages = row["messages"]
        roles = [m["role"] for m in messages]
        assert roles in (["user", "assistant"], ["system", "user", "assistant"])
        for message in messages:
            assert set(message) == {"role", "content"}
            assert isinstance(message["content"], str)
            assert message["content"].strip()
        # Short rows: they stay far inside tailor-tiny's max_length of 128 tokens.
        assert len(messages[-2]["content"]) <= 120
        assert messages[-1]["content"] in TEAMS


def test_support_routing_is_balanced_and_held_out_messages_are_new():
    sample = get_sample("support-routing")
    train, validation = read_jsonl(sample.train_file), read_jsonl(sample.validation_file)
    assert len(train) == 1200
    assert len(validation) == 100
    assert Counter(r["messages"][-1]["content"] for r in train) == dict.fromkeys(TEAMS, 300)
    assert Counter(r["messages"][-1]["content"] for r in validation) == dict.fromkeys(TEAMS, 25)
    train_texts = [normalise(r["messages"][-2]["content"]) for r in train]
    validation_texts = [normalise(r["messages"][-2]["content"]) for r in validation]
    assert len(set(train_texts)) == len(train_texts)
    assert len(set(validation_texts)) == len(validation_texts)
    assert not set(train_texts) & set(validation_texts)


# --- support-preferences -------------------------------------------------------------


def team_of(reply):
    return next(team for team in TEAMS if team in reply.lower())


@pytest.mark.parametrize("which", ["train_file", "validation_file"])
def test_every_preference_row_has_the_input_shape_of_the_preference_format(which):
    rows = read_jsonl(getattr(get_sample("support-preferences"), which))
    for row in rows:
        assert set(row) == {"prompt", "chosen", "rejected"}
        roles = [m["role"] for m in row["prompt"]]
        assert roles in (["user"], ["system", "user"])
        assert all(m["content"].strip() for m in row["prompt"])
        assert len(row["prompt"][-1]["content"]) <= 120
        assert row["chosen"].strip() and row["rejected"].strip()
        assert row["chosen"] != row["rejected"]


def test_the_two_replies_of_a_pair_differ_only_in_the_team_they_name():
    for row in read_jsonl(get_sample("support-preferences").train_file):
        chosen, rejected = team_of(row["chosen"]), team_of(row["rejected"])
        assert chosen != rejected
        assert row["chosen"].lower().replace(chosen, "?") == row["rejected"].lower().replace(
            rejected, "?"
        )


def test_support_preferences_are_balanced_and_held_out_messages_are_new():
    sample = get_sample("support-preferences")
    train, validation = read_jsonl(sample.train_file), read_jsonl(sample.validation_file)
    assert (len(train), len(validation)) == (800, 100)
    assert Counter(team_of(r["chosen"]) for r in train) == dict.fromkeys(TEAMS, 200)
    assert Counter(team_of(r["chosen"]) for r in validation) == dict.fromkeys(TEAMS, 25)
    # Every team is as often the rejected one: a model that cannot read the
    # message has no side to lean to.
    rejected = Counter(team_of(r["rejected"]) for r in train)
    assert all(170 <= count <= 230 for count in rejected.values()), rejected
    train_texts = [normalise(r["prompt"][-1]["content"]) for r in train]
    validation_texts = [normalise(r["prompt"][-1]["content"]) for r in validation]
    assert len(set(train_texts)) == len(train_texts)
    assert len(set(validation_texts)) == len(validation_texts)
    assert not set(train_texts) & set(validation_texts)
