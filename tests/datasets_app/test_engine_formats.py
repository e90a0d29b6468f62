"""The dataset engine reads every format from every file type into canonical records."""

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_app.engine import (
    FILE_TYPES,
    FORMAT_FIELDS,
    FORMAT_LABELS,
    FORMATS,
    TASK_OF_FORMAT,
    detect_file_type,
    detect_format,
    index_path,
    read_page,
    validate,
)
from datasets_app.engine.formats import EXTENSIONS

EXTENSION = {"jsonl": "jsonl", "json": "json", "csv": "csv", "tsv": "tsv", "parquet": "parquet"}


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write `rows` as the file type the name says; nested values become JSON text in CSV."""
    file_type = detect_file_type(path.name)
    if file_type == "jsonl":
        lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        path.write_text("".join(lines), encoding="utf-8")
    elif file_type == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    elif file_type in ("csv", "tsv"):
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with open(path, "w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file, delimiter="," if file_type == "csv" else "\t")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row.get(column)) for column in columns])
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _cell(value) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def canonical_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


# format -> (source rows, canonical records)
SAMPLES = {
    "chat": (
        [
            {"messages": [system("Be brief."), user("Capital of France?"), assistant("Paris.")]},
            {"messages": [user("2 + 2?"), assistant("4"), user("Times 3?"), assistant("12")]},
        ],
        [
            {"messages": [system("Be brief."), user("Capital of France?"), assistant("Paris.")]},
            {"messages": [user("2 + 2?"), assistant("4"), user("Times 3?"), assistant("12")]},
        ],
    ),
    "prompt_completion": (
        [
            {"prompt": "Capital of France?", "completion": "Paris."},
            {"prompt": "Café in English?", "completion": "Coffee."},
        ],
        [
            {"messages": [user("Capital of France?"), assistant("Paris.")]},
            {"messages": [user("Café in English?"), assistant("Coffee.")]},
        ],
    ),
    "alpaca": (
        [
            {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
            {"instruction": "Name a colour.", "input": "", "output": "Blue"},
        ],
        [
            {"messages": [user("Translate to French.\n\nGood morning"), assistant("Bonjour")]},
            {"messages": [user("Name a colour."), assistant("Blue")]},
        ],
    ),
    "sharegpt": (
        [
            {
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "Hi"},
                    {"from": "gpt", "value": "Hello!"},
                ]
            },
            {
                "conversations": [
                    {"from": "human", "value": "東京は?"},
                    {"from": "gpt", "value": "Tokyo."},
                ]
            },
        ],
        [
            {"messages": [system("Be brief."), user("Hi"), assistant("Hello!")]},
            {"messages": [user("東京は?"), assistant("Tokyo.")]},
        ],
    ),
    "text": (
        [{"text": "Once upon a time."}, {"text": "Café au lait, s'il vous plaît."}],
        [
            {"messages": [assistant("Once upon a time.")]},
            {"messages": [assistant("Café au lait, s'il vous plaît.")]},
        ],
    ),
    "text_label": (
        [{"text": "Great film", "label": "positive"}, {"text": "Dull", "label": "negative"}],
        [{"text": "Great film", "label": "positive"}, {"text": "Dull", "label": "negative"}],
    ),
    "preference": (
        [
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
            {"prompt": "東京は?", "chosen": "Tokyo.", "rejected": "Kyoto."},
        ],
        [
            {"messages": [user("Capital of France?")], "chosen": "Paris.", "rejected": "Lyon."},
            {"messages": [user("東京は?")], "chosen": "Tokyo.", "rejected": "Kyoto."},
        ],
    ),
    "openai_preference": (
        [
            {
                "input": {"messages": [system("Be brief."), user("Hi")]},
                "preferred_output": [assistant("Hello!")],
                "non_preferred_output": [assistant("What?")],
            },
            {
                "input": {"messages": [user("2 + 2?")]},
                "preferred_output": [assistant("4")],
                "non_preferred_output": [assistant("5")],
            },
        ],
        [
            {
                "messages": [system("Be brief."), user("Hi")],
                "chosen": "Hello!",
                "rejected": "What?",
            },
            {"messages": [user("2 + 2?")], "chosen": "4", "rejected": "5"},
        ],
    ),
    "feedback": (
        [
            {"prompt": "Capital of France?", "completion": "Paris.", "label": True},
            {"prompt": "Capital of Spain?", "completion": "Lisbon.", "label": False},
        ],
        [
            {"messages": [user("Capital of France?")], "completion": "Paris.", "label": True},
            {"messages": [user("Capital of Spain?")], "completion": "Lisbon.", "label": False},
        ],
    ),
}


def check(tmp_path: Path, name: str, rows: list[dict], **options):
    source = write_rows(tmp_path / name, rows)
    out = tmp_path / "canonical" / "data.jsonl"
    report = validate(source, filename=name, out_path=out, **options)
    return report, out


def test_the_constants_cover_every_format():
    assert FILE_TYPES == ("jsonl", "json", "csv", "tsv", "parquet")
    # Every extension names a file type that has a reader, and every type has one.
    assert set(EXTENSIONS.values()) == set(FILE_TYPES)
    assert set(FORMAT_LABELS) == set(TASK_OF_FORMAT) == set(FORMAT_FIELDS) == set(FORMATS)
    assert set(SAMPLES) == set(FORMATS)


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_every_format_in_every_file_type_becomes_canonical_records(tmp_path, file_type, format):
    rows, expected = SAMPLES[format]
    report, out = check(tmp_path, f"upload.{EXTENSION[file_type]}", rows)
    assert report.errors == []
    assert report.ok is True
    assert (report.file_type, report.format, report.task) == (
        file_type,
        format,
        TASK_OF_FORMAT[format],
    )
    assert report.rows_seen == report.num_rows == len(expected)
    assert canonical_lines(out) == expected
    assert index_path(out).exists()
    assert report.stats["rows"] == len(expected)


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_it_lists_the_source_columns_for_the_mapping_screen(tmp_path, file_type):
    rows = [
        {"id": 1, "prompt": "a", "completion": "b"},
        {"id": 2, "prompt": "c", "completion": "d"},
    ]
    report, _ = check(tmp_path, f"upload.{EXTENSION[file_type]}", rows)
    assert report.columns == ["id", "prompt", "completion"]


def test_canonical_lines_are_compact_utf8_json(tmp_path):
    rows = [{"text": "Café 東京", "label": "x"}, {"text": "b", "label": "y"}]
    _, out = check(tmp_path, "upload.jsonl", rows)
    assert out.read_bytes().splitlines()[0] == '{"text":"Café 東京","label":"x"}'.encode()


@pytest.mark.parametrize(
    ("name", "file_type"),
    [
        ("data.jsonl", "jsonl"),
        ("data.ndjson", "jsonl"),
        ("DATA.JSON", "json"),
        ("data.csv", "csv"),
        ("data.tsv", "tsv"),
        ("data.tab", "tsv"),
        ("data.parquet", "parquet"),
        ("data.pq", "parquet"),
        ("data.csv.txt", None),
        ("data", None),
    ],
)
def test_it_tells_the_file_type_from_the_extension(name, file_type):
    assert detect_file_type(name) == file_type


@pytest.mark.parametrize(
    ("keys", "format"),
    [
        (["messages"], "chat"),
        (["id", "messages", "text"], "chat"),
        (["prompt", "completion"], "prompt_completion"),
        (["instruction", "input", "output"], "alpaca"),
        (["instruction", "output"], "alpaca"),
        (["conversations"], "sharegpt"),
        (["text"], "text"),
        (["text", "label"], "text_label"),
        (["prompt"], None),
        (["question", "answer"], None),
    ],
)
def test_it_detects_the_format_from_the_keys(keys, format):
    assert detect_format([keys]) == format


def test_detection_follows_most_of_the_first_rows():
    assert detect_format([["text"], ["prompt", "completion"], ["prompt", "completion"]]) == (
        "prompt_completion"
    )


def test_a_column_mapping_counts_mapped_columns_as_their_fields():
    assert detect_format([["question", "answer"]], {"prompt": "question", "completion": "answer"})
    assert detect_format([["review", "sentiment"]], {"text": "review", "label": "sentiment"}) == (
        "text_label"
    )


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_a_column_mapping_reads_other_column_names(tmp_path, file_type):
    rows = [{"question": "Capital of France?", "answer": "Paris.", "source": "quiz"}]
    report, out = check(
        tmp_path,
        f"upload.{EXTENSION[file_type]}",
        rows,
        column_mapping={"prompt": "question", "completion": "answer"},
    )
    assert report.ok is True
    assert report.format == "prompt_completion"
    assert canonical_lines(out) == [{"messages": [user("Capital of France?"), assistant("Paris.")]}]


def test_row_errors_name_the_mapped_source_column(tmp_path):
    rows = [{"review": "Fine", "sentiment": "good"}, {"review": 3, "sentiment": "bad"}]
    report, _ = check(
        tmp_path, "upload.jsonl", rows, column_mapping={"text": "review", "label": "sentiment"}
    )
    assert [error.message for error in report.errors] == [
        "line 2, `review`: must be text, got a number"
    ]


def test_a_given_format_overrides_detection(tmp_path):
    rows = [{"text": "Great film", "label": "positive"}]
    report, out = check(tmp_path, "upload.jsonl", rows, format="text")
    assert (report.ok, report.format, report.task) == (True, "text", "generation")
    assert canonical_lines(out) == [{"messages": [assistant("Great film")]}]


def test_a_given_file_type_overrides_the_extension(tmp_path):
    source = tmp_path / "upload.bin"
    source.write_text('{"text": "a"}\n', encoding="utf-8")
    report = validate(
        source, filename="upload.bin", out_path=tmp_path / "c.jsonl", file_type="jsonl"
    )
    assert (report.ok, report.file_type) == (True, "jsonl")


@pytest.mark.parametrize("file_type", ["jsonl", "json", "parquet"])
def test_number_and_true_false_labels_become_text(tmp_path, file_type):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": "c", "label": 2}]
    report, out = check(tmp_path, f"upload.{EXTENSION[file_type]}", rows)
    assert report.ok is True
    assert [record["label"] for record in canonical_lines(out)] == ["1", "0", "2"]
    report, out = check(
        tmp_path, "flags.jsonl", [{"text": "a", "label": True}, {"text": "b", "label": False}]
    )
    assert [record["label"] for record in canonical_lines(out)] == ["true", "false"]


def test_alpaca_input_may_be_missing_or_null(tmp_path):
    rows = [
        {"instruction": "Say hi.", "output": "Hi"},
        {"instruction": "Say bye.", "input": None, "output": "Bye"},
    ]
    report, out = check(tmp_path, "upload.jsonl", rows)
    assert report.ok is True
    assert canonical_lines(out) == [
        {"messages": [user("Say hi."), assistant("Hi")]},
        {"messages": [user("Say bye."), assistant("Bye")]},
    ]


def test_sharegpt_accepts_user_and_assistant_and_role_content_turns(tmp_path):
    rows = [
        {
            "conversations": [
                {"role": "user", "content": "Hi"},
                {"from": "assistant", "value": "Hello"},
            ]
        }
    ]
    report, out = check(tmp_path, "upload.jsonl", rows)
    assert report.ok is True
    assert canonical_lines(out) == [{"messages": [user("Hi"), assistant("Hello")]}]


def test_chat_messages_lose_keys_other_than_role_and_content(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "Hi", "name": "ann"}, assistant("Hello")]}]
    report, out = check(tmp_path, "upload.jsonl", rows)
    assert report.ok is True
    assert canonical_lines(out) == [{"messages": [user("Hi"), assistant("Hello")]}]


def test_a_byte_order_mark_and_blank_lines_are_fine(tmp_path):
    source = tmp_path / "upload.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"text": "a"}\n\n   \r\n{"text": "b"}\r\n\n')
    report = validate(source, filename="upload.jsonl", out_path=tmp_path / "c.jsonl")
    assert (report.ok, report.rows_seen, report.num_rows) == (True, 2, 2)


@pytest.mark.parametrize("name", ["upload.csv", "upload.json"])
def test_a_byte_order_mark_is_fine_in_csv_and_json(tmp_path, name):
    source = write_rows(tmp_path / name, [{"text": "a"}, {"text": "b"}])
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    report = validate(source, filename=name, out_path=tmp_path / "c.jsonl")
    assert (report.ok, report.columns, report.num_rows) == (True, ["text"], 2)


def test_csv_quoted_fields_may_span_lines_and_errors_give_the_starting_line(tmp_path):
    source = tmp_path / "upload.csv"
    source.write_text('text,label\n"two\nlines",a\n"three\nlines\nhere",b\nbad,c,d\n')
    report = validate(source, filename="upload.csv", out_path=tmp_path / "c.jsonl")
    assert [error.message for error in report.errors] == ["line 7: 3 columns, the header has 2"]
    assert report.num_rows == 2


def test_it_reports_progress_and_ends_with_the_whole_file(tmp_path):
    rows = [{"text": f"row {index}"} for index in range(5000)]
    source = write_rows(tmp_path / "upload.jsonl", rows)
    calls = []
    report = validate(
        source,
        filename="upload.jsonl",
        out_path=tmp_path / "c.jsonl",
        progress=lambda *call: calls.append(call),
    )
    assert report.ok is True
    size = source.stat().st_size
    assert calls[-1] == (5000, size, size)
    assert calls == sorted(calls)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 17, 64], ids=lambda chunk: f"{chunk}-byte-chunks")
def test_a_json_array_is_read_in_pieces_across_every_boundary(tmp_path, monkeypatch, chunk):
    from datasets_app.engine.readers import json_array as readers

    rows = [{"text": f"row {index} — naïve 東京 " + "x" * (index % 7)} for index in range(40)]
    rows.append({"text": 'escapes " \\ \u00e9', "label_like": [1.5e3, -2, True, None]})
    write_rows(tmp_path / "upload.json", rows)
    monkeypatch.setattr(readers, "_CHUNK_BYTES", chunk)
    report = validate(
        tmp_path / "upload.json", filename="upload.json", out_path=tmp_path / "c.jsonl"
    )
    assert (report.ok, report.num_rows) == (True, 41)
    assert [
        record["messages"][0]["content"] for record in canonical_lines(tmp_path / "c.jsonl")
    ] == [row["text"] for row in rows]


def test_read_page_works_on_a_validated_file(tmp_path):
    rows = [{"text": f"row {index}"} for index in range(250)]
    _, out = check(tmp_path, "upload.jsonl", rows)
    page = read_page(out, offset=195, limit=10)
    assert [record["messages"][0]["content"] for record in page] == [
        f"row {index}" for index in range(195, 205)
    ]
