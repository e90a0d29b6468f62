"""The limits on one dataset: rows, a row's bytes, the records' bytes and how far a
file may expand. Every bomb here is built small, in the test; a low limit stands
in for a large file."""

import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_app.engine import DatasetLimits, validate

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}


def run(tmp_path, name: str, content, limits: DatasetLimits | None = None):
    source = tmp_path / name
    if isinstance(content, pa.Table):
        # Dictionary pages and zstd: a value repeated in every row is stored once.
        pq.write_table(content, source, compression="zstd", use_dictionary=True)
    else:
        source.write_bytes(content if isinstance(content, bytes) else content.encode())
    started = time.monotonic()
    report = validate(source, filename=name, out_path=tmp_path / "out.jsonl", limits=limits)
    assert time.monotonic() - started < 2
    assert report.ok is False
    assert not (tmp_path / "out.jsonl").exists()
    return report, source.stat().st_size


def messages(report) -> list[str]:
    return [error.message for error in report.errors]


def repeated(value: str, rows: int) -> pa.Table:
    """A prompt/completion table whose every prompt is `value`, held once."""

    def column(text):
        return pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([text]))

    return pa.table({"prompt": column(value), "completion": column("y")})


def test_a_parquet_bomb_stops_at_the_expansion_limit_before_it_is_written(tmp_path):
    # 2,000 rows of one 40 KB prompt: 80 MB of records from a file under 1 KB.
    report, size = run(tmp_path, "bomb.parquet", repeated("x" * 40_000, 2_000))
    assert size < 1024
    assert messages(report) == [
        f"the records come to more than {size * 100:,} bytes, 100 times the file's "
        f"{size:,} bytes: a file may expand at most 100-fold (DATASET_MAX_EXPANSION)"
    ]


def test_a_parquet_bomb_is_refused_from_its_footer_when_its_columns_alone_expand(tmp_path):
    report, size = run(tmp_path, "bomb.parquet", repeated("x" * 400_000, 2_000))
    assert messages(report) == [
        f"the columns read hold {report_uncompressed(tmp_path)[0]:,} bytes uncompressed, "
        f"more than 100 times the file's {size:,} bytes: a file may expand at most 100-fold "
        "(DATASET_MAX_EXPANSION)"
    ]
    assert report.rows_seen == 0


def report_uncompressed(tmp_path) -> list[int]:
    metadata = pq.read_metadata(tmp_path / "bomb.parquet")
    return [metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups)]


def test_a_parquet_row_over_the_row_limit_is_refused_without_being_built(tmp_path):
    # Each row's prompt is one dictionary entry: the check sums Arrow's lengths.
    limits = DatasetLimits(max_row_bytes=1_000, max_expansion=1_000_000)
    report, _ = run(tmp_path, "rows.parquet", repeated("x" * 5_000, 3), limits)
    assert messages(report) == [
        f"row {n}: the row's values come to 5,001 bytes, over the 1,000-byte limit on a row"
        for n in (1, 2, 3)
    ]


def test_nested_parquet_values_count_towards_a_row(tmp_path):
    long_turn = {"role": "assistant", "content": "z" * 2_000}
    table = pa.table({"messages": [CHAT["messages"], [CHAT["messages"][0], long_turn]]})
    limits = DatasetLimits(max_row_bytes=1_000, max_expansion=1_000_000)
    report, _ = run(tmp_path, "chat.parquet", table, limits)
    assert messages(report) == [
        "row 2: the row's values come to 2,015 bytes, over the 1,000-byte limit on a row"
    ]
    assert (report.rows_seen, report.num_rows) == (2, 1)


def test_a_parquet_row_group_too_large_for_its_rows_is_refused_from_the_footer(tmp_path):
    limits = DatasetLimits(max_row_bytes=1_000, max_expansion=1_000_000)
    report, _ = run(tmp_path, "bomb.parquet", repeated("x" * 200_000, 1), limits)
    assert messages(report) == [
        f"row group 1 holds {report_uncompressed(tmp_path)[0]:,} bytes uncompressed in 1 rows, "
        "so a row in it is over the 1,000-byte limit on a row (DATASET_MAX_ROW_BYTES)"
    ]


def test_a_parquet_file_over_the_row_limit_is_refused_from_its_footer(tmp_path):
    report, _ = run(tmp_path, "many.parquet", repeated("x", 101), DatasetLimits(max_rows=100))
    assert messages(report) == [
        "the file holds 101 rows, over the 100-row limit on one dataset (DATASET_MAX_ROWS)"
    ]
    assert report.rows_seen == 0


def test_the_settings_set_the_limits(settings, tmp_path):
    # A JSONL of ten million tiny rows, scaled down to a limit of 100.
    settings.DATASET_MAX_ROWS = 100
    limits = DatasetLimits.from_settings(settings)
    report, _ = run(tmp_path, "many.jsonl", (json.dumps(CHAT) + "\n") * 101, limits)
    assert messages(report) == [
        "the file holds more than 100 records, the most one dataset may hold here "
        "(DATASET_MAX_ROWS)"
    ]
    assert report.rows_seen == 100


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("many.json", "[" + ", ".join(['{"text": "a"}'] * 11) + "]"),
        ("many.json", "[" + ", ".join(["1"] * 11) + "]"),  # unreadable rows count too
        ("many.csv", "text\n" + "a\n" * 11),
    ],
)
def test_the_row_limit_holds_for_every_file_type(tmp_path, name, content):
    report, _ = run(tmp_path, name, content, DatasetLimits(max_rows=10))
    assert messages(report)[-1] == (
        "the file holds more than 10 records, the most one dataset may hold here (DATASET_MAX_ROWS)"
    )


def test_the_records_limit_holds_for_text_files(tmp_path):
    content = "text\n" + "a\n" * 100
    report, _ = run(tmp_path, "many.csv", content, DatasetLimits(max_records_bytes=500))
    assert messages(report) == [
        "the records come to more than 500 bytes, the most one dataset may hold here "
        "(DATASET_MAX_RECORDS_BYTES)"
    ]


def test_a_csv_cell_over_the_row_limit_is_read_past(tmp_path):
    content = "text,label\na,b\n" + "x" * 50_000 + ",c\nd,e\n"
    report, _ = run(tmp_path, "cell.csv", content, DatasetLimits(max_row_bytes=1_000))
    assert messages(report) == ["line 3: the line is 50,002 bytes, over the 1,000-byte limit"]


def test_a_record_nested_past_json_s_reach_is_a_sentence_not_a_crash(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    report, _ = run(tmp_path, "deep.jsonl", json.dumps(CHAT) + "\n" + deep + "\n")
    assert messages(report) == [
        "line 2: the record nests lists or objects more deeply than JSON's reader follows "
        "(a record is a few levels deep)"
    ]
    report, _ = run(tmp_path, "deep.json", f"[{json.dumps(CHAT)}, {deep}]")
    assert messages(report) == [
        "element 2: the record nests lists or objects more deeply than JSON's reader follows "
        "(a record is a few levels deep)"
    ]
    report, _ = run(tmp_path, "deep.csv", f'messages\n"{deep}"\n')
    assert messages(report) == [
        "line 2, `messages`: the record nests lists or objects more deeply than JSON's "
        "reader follows (a record is a few levels deep)"
    ]


def test_a_sentence_quotes_only_the_start_of_a_long_value(tmp_path):
    turns = [{"role": "r" * 1_000_000, "content": "Hi"}, CHAT["messages"][1]]
    report, _ = run(tmp_path, "long.jsonl", json.dumps({"messages": turns}) + "\n",
                    DatasetLimits(max_row_bytes=2_000_000))  # fmt: skip
    assert messages(report)[0] == (
        "line 1, `messages[0].role`: must be one of system, user, assistant (got '"
        + "r" * 59
        + "…')"
    )
