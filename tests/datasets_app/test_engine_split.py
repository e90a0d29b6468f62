"""Splitting canonical files exactly and reproducibly, and paging through them."""

import json

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
