"""Splitting canonical files exactly and reproducibly, and paging through them."""

import json
import random

import numpy as np
import pytest

from datasets_app.engine import INDEX_STRIDE, index_path, read_page, split, validation_size
from datasets_app.engine.canonical import CanonicalWriter


def canonical(path, count):
    with CanonicalWriter(path) as writer:
        for index in range(count):
            writer.write((json.dumps({"text": f"row {index}", "label": "x"}) + "\n").encode())
        writer.commit()
    return path


def texts(path):
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("rows", "fraction", "size"),
    [
        (1000, 0.1, 100),
        (1000, 0.05, 50),
        (999, 0.1, 100),
        (10, 0.01, 1),
        (2, 0.5, 1),
        (2, 0.9, 1),
        (1, 0.5, 0),
        (100, 0.0, 0),
    ],
)
def test_validation_gets_the_rounded_share_within_bounds(rows, fraction, size):
    assert validation_size(rows, fraction) == size


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_a_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match="fraction must be at least 0 and below 1"):
        validation_size(10, fraction)


def test_split_is_exact_ordered_and_complete(tmp_path):
    source = canonical(tmp_path / "records.jsonl", 1000)
    counts = split(
        source,
        num_rows=1000,
        fraction=0.1,
        seed=42,
        train_out=tmp_path / "train.jsonl",
        validation_out=tmp_path / "validation.jsonl",
    )
    assert counts == (900, 100)
    train, held_out = texts(tmp_path / "train.jsonl"), texts(tmp_path / "validation.jsonl")
    assert (len(train), len(held_out)) == (900, 100)
    order = {text: index for index, text in enumerate(texts(source))}
    assert [order[text] for text in train] == sorted(order[text] for text in train)
    assert [order[text] for text in held_out] == sorted(order[text] for text in held_out)
    assert sorted(train + held_out, key=order.get) == texts(source)
    assert index_path(tmp_path / "train.jsonl").exists()
    assert index_path(tmp_path / "validation.jsonl").exists()


def test_the_same_seed_gives_the_same_split_and_another_seed_another(tmp_path):
    source = canonical(tmp_path / "records.jsonl", 500)

    def held_out(seed, name):
        split(
            source,
            num_rows=500,
            fraction=0.2,
            seed=seed,
            train_out=tmp_path / f"{name}-train.jsonl",
            validation_out=tmp_path / f"{name}-validation.jsonl",
        )
        return texts(tmp_path / f"{name}-validation.jsonl")

    assert held_out(1, "a") == held_out(1, "b")
    assert held_out(1, "a") != held_out(2, "c")


def test_a_zero_fraction_puts_everything_in_training(tmp_path):
    source = canonical(tmp_path / "records.jsonl", 30)
    assert split(
        source,
        num_rows=30,
        fraction=0,
        seed=0,
        train_out=tmp_path / "train.jsonl",
        validation_out=tmp_path / "validation.jsonl",
    ) == (30, 0)
    assert (tmp_path / "validation.jsonl").read_bytes() == b""
    assert read_page(tmp_path / "validation.jsonl", offset=0, limit=5) == []


@pytest.mark.parametrize("claimed", [99, 101])
def test_split_refuses_a_row_count_that_does_not_match_and_leaves_nothing(tmp_path, claimed):
    source = canonical(tmp_path / "records.jsonl", 100)
    with pytest.raises(ValueError, match="rows"):
        split(
            source,
            num_rows=claimed,
            fraction=0.1,
            seed=0,
            train_out=tmp_path / "train.jsonl",
            validation_out=tmp_path / "validation.jsonl",
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["records.idx", "records.jsonl"]


def test_the_index_holds_the_offset_of_every_hundredth_record(tmp_path):
    source = canonical(tmp_path / "records.jsonl", 250)
    assert INDEX_STRIDE == 100
    offsets = index_path(source).read_bytes()
    assert len(offsets) == 3 * 8
    data = source.read_bytes()
    for mark in range(3):
        offset = int.from_bytes(offsets[mark * 8 : mark * 8 + 8], "little")
        assert (
            data[offset:].split(b"\n", 1)[0]
            == json.dumps({"text": f"row {mark * 100}", "label": "x"}).encode()
        )


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        (0, 3, [0, 1, 2]),
        (98, 4, [98, 99, 100, 101]),
        (195, 10, list(range(195, 205))),
        (245, 10, list(range(245, 250))),
        (250, 10, []),
        (1000, 10, []),
        (10, 0, []),
    ],
)
def test_read_page_returns_the_rows_asked_for(tmp_path, offset, limit, expected):
    source = canonical(tmp_path / "records.jsonl", 250)
    page = read_page(source, offset=offset, limit=limit)
    assert [record["text"] for record in page] == [f"row {index}" for index in expected]


def test_read_page_refuses_negative_numbers(tmp_path):
    source = canonical(tmp_path / "records.jsonl", 5)
    with pytest.raises(ValueError, match="must not be negative"):
        read_page(source, offset=-1, limit=5)


def test_a_writer_left_by_an_exception_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), CanonicalWriter(tmp_path / "records.jsonl") as writer:
        writer.write(b"{}\n")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


# --- exact duplicates stay on one side ------------------------------------------------


def canonical_of(path, texts_in_order):
    with CanonicalWriter(path) as writer:
        for text in texts_in_order:
            writer.write((json.dumps({"text": text, "label": "x"}) + "\n").encode())
        writer.commit()
    return path


def split_texts(tmp_path, source, rows, *, fraction=0.1, seed=42):
    counts = split(
        source,
        num_rows=rows,
        fraction=fraction,
        seed=seed,
        train_out=tmp_path / "train.jsonl",
        validation_out=tmp_path / "validation.jsonl",
    )
    return counts, texts(tmp_path / "train.jsonl"), texts(tmp_path / "validation.jsonl")


@pytest.mark.parametrize("seed", range(12))
def test_each_duplicate_group_lands_on_one_side(tmp_path, seed):
    # 300 rows: 60 texts written five times each, and 100 distinct ones, shuffled.
    rows = [f"repeated {i % 60}" for i in range(300)] + [f"single {i}" for i in range(100)]
    random.Random(seed).shuffle(rows)  # noqa: S311  (test data, not secrets)
    source = canonical_of(tmp_path / "records.jsonl", rows)
    (n_train, n_validation), train, held_out = split_texts(tmp_path, source, 400, seed=seed)
    assert not set(train) & set(held_out)
    assert sorted(train + held_out) == sorted(rows)
    assert (n_train, n_validation) == (len(train), len(held_out))
    # Whole groups while they fit: never more than the share asked for.
    assert 30 <= n_validation <= validation_size(400, 0.1) == 40
    order = {text: index for index, text in enumerate(dict.fromkeys(rows))}
    assert [order[text] for text in dict.fromkeys(held_out)] == sorted(
        order[text] for text in dict.fromkeys(held_out)
    )


def test_a_file_without_duplicates_keeps_its_seeded_random_split(tmp_path):
    source = canonical(tmp_path / "records.jsonl", 500)
    _, _, held_out = split_texts(tmp_path, source, 500, fraction=0.2, seed=7)
    picked = np.random.default_rng(7).choice(500, size=100, replace=False)
    assert held_out == [f"row {index}" for index in sorted(picked.tolist())]


def test_the_grouped_split_is_the_same_every_time(tmp_path):
    rows = [f"text {i % 37}" for i in range(200)]
    source = canonical_of(tmp_path / "records.jsonl", rows)
    first = split_texts(tmp_path, source, 200, fraction=0.25, seed=3)
    again = split_texts(tmp_path, source, 200, fraction=0.25, seed=3)
    assert first == again
    assert first[0][1] > 0


def test_a_file_of_one_repeated_row_trains_on_all_of_it(tmp_path):
    source = canonical_of(tmp_path / "records.jsonl", ["same"] * 20)
    counts, train, held_out = split_texts(tmp_path, source, 20, fraction=0.2)
    assert (counts, held_out) == ((20, 0), [])
    assert train == ["same"] * 20


def test_duplicates_found_on_disk_are_kept_together_too(tmp_path, monkeypatch):
    from datasets_app.engine import duplicates

    monkeypatch.setattr(duplicates, "BUFFER_ROWS", 16)
    rows = [f"text {i % 90}" for i in range(450)]
    source = canonical_of(tmp_path / "records.jsonl", rows)
    (_, n_validation), train, held_out = split_texts(tmp_path, source, 450, seed=11)
    assert not set(train) & set(held_out)
    assert n_validation == 45
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "records.idx", "records.jsonl", "train.idx", "train.jsonl",
        "validation.idx", "validation.jsonl",
    ]  # fmt: skip
