"""Bad uploads: each problem is reported with its whole, precise sentence, and nothing is kept."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_app.engine import index_path, validate
from datasets_app.engine.limits import DatasetLimits

ACCEPTED_SHAPES = (
    "messages; prompt + completion; instruction + input + output; conversations; text; "
    "text + label; prompt + chosen + rejected; input + preferred_output + non_preferred_output; "
    "prompt + completion + label"
)


def run(tmp_path, name, content, **options):
    source = tmp_path / name
    source.write_bytes(content if isinstance(content, bytes) else content.encode())
    report = validate(
        source, filename=options.pop("filename", name), out_path=tmp_path / "out.jsonl", **options
    )
    assert report.ok is False
    assert report.stats == {}
    assert not (tmp_path / "out.jsonl").exists()
    assert not (tmp_path / "out.idx").exists()
    return report


def messages(report) -> list[str]:
    return [error.message for error in report.errors]


def jsonl(*rows) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def chat(*turns) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


GOOD_CHAT = chat(("user", "Hi"), ("assistant", "Hello"))


def test_it_rejects_an_empty_file(tmp_path):
    report = run(tmp_path, "data.jsonl", "")
    assert report.errors[0].as_dict() == {
        "line": None,
        "field": None,
        "code": "empty_file",
        "message": "the file is empty",
    }


def test_it_rejects_a_jsonl_file_of_blank_lines(tmp_path):
    assert messages(run(tmp_path, "data.jsonl", "\n  \n\n")) == [
        "the file holds no records, only blank lines"
    ]


def test_it_names_the_line_and_byte_offset_of_the_first_byte_that_is_not_utf8(tmp_path):
    report = run(tmp_path, "data.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    assert messages(report) == [
        "not UTF-8 text: byte 0xe9 on line 2, at byte offset 28 of the file "
        "(save the file as UTF-8)"
    ]
    assert report.errors[0].code == "not_utf8"


@pytest.mark.parametrize("name", ["data.csv", "data.json"])
def test_csv_and_json_files_that_are_not_utf8_say_where_too(tmp_path, name):
    content = (
        b"text\nok\ncaf\xe9\n"
        if name.endswith("csv")
        else b'[{"text": "ok"},\n{"text": "caf\xe9"}]'
    )
    offset = content.index(b"\xe9")
    assert messages(run(tmp_path, name, content)) == [
        f"not UTF-8 text: byte 0xe9 on line 3, at byte offset {offset} of the file "
        "(save the file as UTF-8)"
        if name.endswith("csv")
        else f"not UTF-8 text: byte 0xe9 on line 2, at byte offset {offset} of the file "
        "(save the file as UTF-8)"
    ]


def test_it_recognises_a_utf16_file(tmp_path):
    assert messages(run(tmp_path, "data.jsonl", '{"text": "ok"}\n'.encode("utf-16"))) == [
        "not UTF-8 text: byte 0xff on line 1, at byte offset 0 of the file "
        "(it looks like UTF-16; save it as UTF-8)"
    ]


def test_it_rejects_a_binary_file(tmp_path):
    assert messages(run(tmp_path, "data.jsonl", b"PK\x03\x04\x14\x00\x00\x00\x08\x00")) == [
        "the file looks binary, not text: a NUL byte on line 1, at byte offset 5 of the file"
    ]


@pytest.mark.parametrize("filename", ["data.txt", "data", "data.xlsx"])
def test_it_names_the_accepted_extensions_for_an_unknown_one(tmp_path, filename):
    assert messages(run(tmp_path, "upload", jsonl(GOOD_CHAT), filename=filename)) == [
        f"cannot tell the file type from the name {filename!r}; accepted extensions: "
        ".jsonl, .ndjson, .json, .csv, .tsv, .tab, .parquet, .pq"
    ]


def test_it_rejects_an_unknown_file_type_or_format_argument(tmp_path):
    assert messages(run(tmp_path, "data.jsonl", jsonl(GOOD_CHAT), file_type="xls")) == [
        "unknown file type 'xls'; accepted: jsonl, json, csv, tsv, parquet"
    ]
    assert messages(run(tmp_path, "data.jsonl", jsonl(GOOD_CHAT), format="dialogue")) == [
        "unknown format 'dialogue'; accepted: chat, prompt_completion, alpaca, sharegpt, text, "
        "text_label, preference, openai_preference, feedback"
    ]


def test_it_names_the_line_of_malformed_json(tmp_path):
    content = '{"text": "a"}\n{"text": "b"}\n{"text": "c" "d": 1}\n'
    report = run(tmp_path, "data.jsonl", content)
    assert report.errors[0].as_dict() == {
        "line": 3,
        "field": None,
        "code": "invalid_json",
        "message": "line 3: not valid JSON (Expecting ',' delimiter at column 14)",
    }
    assert (report.rows_seen, report.num_rows, report.error_count) == (3, 2, 1)


def test_it_spots_a_pretty_printed_json_document_named_jsonl(tmp_path):
    assert messages(run(tmp_path, "data.jsonl", '[\n  {"text": "a"}\n]\n')) == [
        "line 1: not valid JSON Lines: the file looks like one JSON document spread over "
        "several lines; a .jsonl file holds one record per line (or name the file .json)"
    ]


def test_it_wants_an_object_on_each_line(tmp_path):
    assert messages(run(tmp_path, "data.jsonl", '{"text": "a"}\n["text"]\n"text"\n')) == [
        "line 2: must be a JSON object ({...}), got a list",
        "line 3: must be a JSON object ({...}), got text",
    ]


def test_it_wants_an_array_at_the_top_of_a_json_file(tmp_path):
    assert messages(run(tmp_path, "data.json", '{"text": "a"}')) == [
        "a .json file must hold an array of records ([{...}, {...}]), but this one holds "
        "an object; for one record per line, use .jsonl"
    ]


def test_it_wants_objects_in_a_json_array(tmp_path):
    assert messages(run(tmp_path, "data.json", '[{"text": "a"}, 2, "b"]')) == [
        "element 2: must be a JSON object ({...}), got a number",
        "element 3: must be a JSON object ({...}), got text",
    ]


def test_a_json_array_of_no_objects_at_all_gets_one_error_per_element(tmp_path):
    assert messages(run(tmp_path, "data.json", "[1, [2]]")) == [
        "element 1: must be a JSON object ({...}), got a number",
        "element 2: must be a JSON object ({...}), got a list",
    ]


def test_it_places_broken_json_array_syntax_in_the_file(tmp_path):
    report = run(tmp_path, "data.json", '[{"text": "a"},\n {"text": "b" "c": 1}]')
    assert report.errors[0].as_dict() == {
        "line": 2,
        "field": None,
        "code": "bad_array",
        "message": "element 2: not valid JSON (Expecting ',' delimiter at line 2, column 15 "
        "of the file)",
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '[{"text": "a"},',
            "element 2: not valid JSON (Expecting value at line 1, column 16 of the file)",
        ),
        (
            '[{"text": "a"}',
            "element 2: not valid JSON (Expecting ',' delimiter at line 1, column 15 of the file)",
        ),
        (
            '[{"text": "a"} {"text": "b"}]',
            "element 2: not valid JSON (Expecting ',' delimiter at line 1, column 16 of the file)",
        ),
        (
            '[{"text": "a"}] x',
            "unexpected content after the array's closing ] (at line 1, column 17 of the file)",
        ),
        ("[]", "the file holds an empty array: there are no records"),
        ("  \n ", "the file holds no records, only blank lines"),
        ("nonsense", "element 1: not valid JSON (Expecting value at line 1, column 1 of the file)"),
        (
            "12",
            "a .json file must hold an array of records ([{...}, {...}]), but this one holds "
            "a number; for one record per line, use .jsonl",
        ),
    ],
)
def test_it_explains_every_way_a_json_array_can_break(tmp_path, content, message):
    assert messages(run(tmp_path, "data.json", content)) == [message]


def test_it_says_when_text_is_a_number(tmp_path):
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(3)]
    rows.append({"prompt": "q", "completion": 4})
    report = run(tmp_path, "data.jsonl", jsonl(*rows))
    assert report.errors[0].as_dict() == {
        "line": 4,
        "field": "completion",
        "code": "wrong_type",
        "message": "line 4, `completion`: must be text, got a number",
    }


def test_it_names_a_missing_field(tmp_path):
    content = jsonl({"prompt": "q", "completion": "a"}, {"prompt": "q"}, {"completion": "a"})
    assert messages(run(tmp_path, "data.jsonl", content)) == [
        "line 2: missing `completion`",
        "line 3: missing `prompt`",
    ]


def test_rows_of_another_shape_name_the_field_the_detected_format_needs(tmp_path):
    content = jsonl(GOOD_CHAT, GOOD_CHAT, {"text": "x"})
    report = run(tmp_path, "data.jsonl", content)
    assert report.format == "chat"
    assert messages(report) == ["line 3: missing `messages`"]


def test_it_lists_the_accepted_shapes_for_an_unknown_format(tmp_path):
    report = run(tmp_path, "data.jsonl", jsonl({"id": 1, "question": "q", "answer": "a"}))
    assert report.format is None
    assert report.columns == ["id", "question", "answer"]
    assert messages(report) == [
        f"the records match none of the accepted shapes ({ACCEPTED_SHAPES}); keys seen: "
        "id, question, answer. If your columns hold one of these under other names, map them "
        "with a column mapping"
    ]


@pytest.mark.parametrize(
    ("turns", "message"),
    [
        (
            [("user", "Hi"), ("bot", "Hello")],
            "line 1, `messages[1].role`: must be one of system, user, assistant (got 'bot')",
        ),
        (
            [("user", "Hi"), ("tool", "{}")],
            "line 1, `messages[1].role`: must be one of system, user, assistant (got 'tool')",
        ),
        (
            [("assistant", "Hello")],
            "line 1, `messages[0].role`: the conversation must start with a user message "
            "(after an optional system message), got 'assistant'",
        ),
        (
            # A system message and a reply alone are fine (a warning); not as an opening.
            [("system", "Be kind."), ("assistant", "Hello"), ("user", "Hi"), ("assistant", "Yo")],
            "line 1, `messages[1].role`: the conversation must start with a user message "
            "(after an optional system message), got 'assistant'",
        ),
        (
            [("user", "Hi"), ("user", "Anyone?"), ("assistant", "Hello")],
            "line 1, `messages[1].role`: expected assistant after user (user and assistant "
            "messages alternate), got 'user'",
        ),
        (
            [("user", "Hi"), ("assistant", "Hello"), ("system", "Be kind.")],
            "line 1, `messages[2].role`: a system message may only come first",
        ),
        (
            [("user", "Hi"), ("assistant", "Hello"), ("user", "Bye")],
            "line 1, `messages[2].role`: the conversation must end with an assistant message, "
            "got 'user'",
        ),
        (
            [("system", "Be kind.")],
            "line 1, `messages[0].role`: the conversation must end with an assistant message, "
            "got 'system'",
        ),
        (
            [("user", "Hi"), ("assistant", "  ")],
            "line 1, `messages[1].content`: must not be empty: it is what the model learns "
            "to write",
        ),
    ],
)
def test_it_explains_each_chat_rule_with_the_field_path(tmp_path, turns, message):
    assert messages(run(tmp_path, "data.jsonl", jsonl(chat(*turns)))) == [message]


def test_it_explains_malformed_messages(tmp_path):
    rows = [
        {"messages": []},
        {"messages": "Hi"},
        {
            "messages": [
                {"role": "user"},
                {"content": "x"},
                "Hi",
                {"role": "assistant", "content": 5},
            ]
        },
    ]
    assert messages(run(tmp_path, "data.jsonl", jsonl(*rows))) == [
        "line 1, `messages`: must hold at least a user message and an assistant reply, "
        "got an empty list",
        "line 2, `messages`: must be a list of messages, got text",
        "line 3: missing `messages[0].content`",
        "line 3: missing `messages[1].role`",
        "line 3, `messages[2]`: must be an object with `role` and `content`, got text",
        "line 3, `messages[3].content`: must be text, got a number",
    ]


def test_sharegpt_errors_use_sharegpt_words(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Yo"}]},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "human", "value": "?"}]},
        {"conversations": [{"from": "gpt", "value": "Hi"}]},
    ]
    assert messages(run(tmp_path, "data.jsonl", jsonl(*rows))) == [
        "line 1, `conversations[1].from`: must be one of system, human, user, gpt, assistant "
        "(got 'bot')",
        "line 2, `conversations[1].from`: expected gpt after human (human and gpt messages "
        "alternate), got 'human'",
        "line 3, `conversations[0].from`: the conversation must start with a human message "
        "(after an optional system message), got 'gpt'",
    ]


def test_it_explains_bad_text_and_labels(tmp_path):
    rows = [
        {"text": "a", "label": [1]},
        {"text": "a", "label": ""},
        {"text": "", "label": 1},
        {"text": "a", "label": None},
        {"text": "a", "label": {"name": "x"}},
    ]
    assert messages(run(tmp_path, "data.jsonl", jsonl(*rows))) == [
        "line 1, `label`: must be text or a number, got a list",
        "line 2, `label`: must not be empty",
        "line 3, `text`: must not be empty",
        "line 4, `label`: must be text or a number, got null",
        "line 5, `label`: must be text or a number, got an object",
    ]


def test_empty_replies_are_errors_in_every_generation_format(tmp_path):
    rows = [
        {"prompt": "q", "completion": ""},
        {"prompt": "q", "completion": " \n"},
    ]
    assert messages(run(tmp_path, "data.jsonl", jsonl(*rows))) == [
        "line 1, `completion`: must not be empty: it is what the model learns to write",
        "line 2, `completion`: must not be empty: it is what the model learns to write",
    ]
    rows = [{"instruction": "Say hi.", "output": ""}]
    assert messages(run(tmp_path, "data.jsonl", jsonl(*rows))) == [
        "line 1, `output`: must not be empty: it is what the model learns to write"
    ]
    assert messages(run(tmp_path, "data.jsonl", jsonl({"text": ""}))) == [
        "line 1, `text`: must not be empty"
    ]


def test_nan_and_lone_surrogates_are_not_text(tmp_path):
    content = '{"text": NaN}\n{"text": "\\ud800"}\n'
    assert messages(run(tmp_path, "data.jsonl", content)) == [
        "line 1, `text`: must be text, got a number",
        "line 2: holds a lone surrogate escape (such as \\ud800), which is not text",
    ]


def test_it_counts_every_ragged_csv_row(tmp_path):
    content = "text,label\n" + "a,b\n" * 5 + "c,d,e\nf\n"
    assert messages(run(tmp_path, "data.csv", content)) == [
        "line 7: 3 columns, the header has 2",
        "line 8: 1 columns, the header has 2",
    ]


def test_it_says_where_an_unclosed_csv_quote_started(tmp_path):
    report = run(tmp_path, "data.csv", 'text,label\nhello,pos\nbye,"neg\nmore,pos\n')
    assert report.errors[0].as_dict() == {
        "line": 3,
        "field": None,
        "code": "unclosed_quote",
        "message": "line 3: the quoted field that starts at line 3, column 5 is never closed "
        "(the file ends inside it)",
    }


def test_an_unclosed_quote_that_swallows_the_file_stops_at_the_size_limit(tmp_path):
    content = 'text,label\na,b\n"' + "x,y\n" * 50 + "c,d\n"
    assert messages(
        run(tmp_path, "data.csv", content, limits=DatasetLimits(max_row_bytes=100))
    ) == [
        "line 3: the row runs on for more than 100 bytes; the quoted field that starts at "
        "line 3, column 1 is probably missing its closing quote"
    ]


def test_it_explains_a_malformed_csv_quote(tmp_path):
    content = 'text,label\nhello,pos\n"bye" now,neg\n"see\nyou "soon",pos\nok,neg\n'
    assert messages(run(tmp_path, "data.csv", content)) == [
        "line 3: malformed CSV (',' expected after '\"')",
        "line 4: malformed CSV (',' expected after '\"' at line 5); the quoted field that "
        "starts at line 4, column 1 may be missing its closing quote",
    ]


def test_a_tsv_file_is_split_on_tabs(tmp_path):
    assert messages(run(tmp_path, "data.tsv", "text\tlabel\na\tb\nc,d\n")) == [
        "line 3: 1 columns, the header has 2"
    ]


def test_a_csv_header_may_not_repeat_a_name(tmp_path):
    assert messages(run(tmp_path, "data.csv", "text,label,text\na,b,c\n")) == [
        "line 1: the header names the column `text` twice"
    ]


@pytest.mark.parametrize("name", ["data.csv", "data.tsv"])
def test_a_header_without_rows_is_not_a_dataset(tmp_path, name):
    assert messages(
        run(tmp_path, name, "text,label\n\n".replace(",", "\t" if "tsv" in name else ","))
    ) == ["the file has a header but no rows"]


def test_a_line_over_the_size_limit_is_a_row_error(tmp_path):
    content = '{"text": "a"}\n{"text": "' + "x" * 150 + '"}\n{"text": "b"}\n'
    report = run(tmp_path, "data.jsonl", content, limits=DatasetLimits(max_row_bytes=100))
    assert messages(report) == ["line 2: the line is 162 bytes, over the 100-byte limit"]
    assert (report.rows_seen, report.num_rows) == (3, 2)


def test_a_csv_line_over_the_size_limit_is_a_row_error(tmp_path):
    content = "text,label\na,b\n" + "x" * 150 + ",c\nd,e\n"
    assert messages(
        run(tmp_path, "data.csv", content, limits=DatasetLimits(max_row_bytes=100))
    ) == ["line 3: the line is 152 bytes, over the 100-byte limit"]


def test_a_json_element_over_the_size_limit_is_a_row_error(tmp_path):
    content = '[{"text": "a"}, {"text": "' + "x" * 150 + '"}, {"text": "b"}]'
    assert messages(
        run(tmp_path, "data.json", content, limits=DatasetLimits(max_row_bytes=100))
    ) == ["element 2: the row is 162 bytes, over the 100-byte limit"]


def test_a_parquet_row_over_the_size_limit_is_a_row_error(tmp_path):
    source = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": ["a", "x" * 150, "b"]}), source)
    report = validate(
        source,
        filename="data.parquet",
        out_path=tmp_path / "out.jsonl",
        limits=DatasetLimits(max_row_bytes=100),
    )
    assert messages(report) == [
        "row 2: the row's values come to 150 bytes, over the 100-byte limit on a row"
    ]


def test_it_rejects_a_file_that_is_not_parquet(tmp_path):
    assert messages(run(tmp_path, "data.parquet", b"PAR1 but not really")) == [
        "not a readable Parquet file (Parquet magic bytes not found in footer. Either the file "
        "is corrupted or this is not a parquet file.)"
    ]


def test_it_rejects_a_truncated_parquet_file(tmp_path):
    source = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(1000)]}), source)
    data = source.read_bytes()
    report = run(tmp_path, "data.parquet", data[: len(data) // 2])
    assert report.errors[0].code == "bad_parquet"
    assert report.errors[0].message.startswith("not a readable Parquet file (")


def test_a_parquet_file_with_no_rows_says_so(tmp_path):
    source = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), source)
    report = validate(source, filename="data.parquet", out_path=tmp_path / "out.jsonl")
    assert messages(report) == ["the file has columns (text) but no rows"]


def test_a_csv_messages_cell_must_hold_json(tmp_path):
    content = 'messages\n"[{""role"": ""user""}"\n'
    assert messages(run(tmp_path, "data.csv", content)) == [
        "line 2, `messages`: must hold JSON text (Expecting ',' delimiter at column 18)"
    ]


def test_a_classifier_needs_two_labels(tmp_path):
    rows = [{"text": f"review {i}", "label": "positive"} for i in range(1000)]
    report = run(tmp_path, "data.jsonl", jsonl(*rows))
    assert report.errors[0].as_dict() == {
        "line": None,
        "field": None,
        "code": "one_label",
        "message": "only one label (positive) in 1,000 rows; a classifier needs at least two",
    }


def test_a_label_column_of_free_text_is_refused(tmp_path):
    rows = [{"text": f"review {i}", "label": f"label {i}"} for i in range(1001)]
    assert messages(run(tmp_path, "data.jsonl", jsonl(*rows))) == [
        "more than 1,000 different labels in `label`; a classification label names a class, "
        "so this column looks like free text"
    ]


def test_column_mapping_mistakes_are_explained(tmp_path):
    content = "question,answer\nq,a\n"
    assert messages(
        run(
            tmp_path,
            "data.csv",
            content,
            column_mapping={"prompt": "question", "completion": "answr"},
        )
    ) == [
        "the column mapping reads 'completion' from the column `answr`, but the file has no "
        "such column (columns: question, answer)"
    ]
    assert messages(
        run(
            tmp_path,
            "data.csv",
            content,
            format="prompt_completion",
            column_mapping={"prompt": "question", "answer": "answer"},
        )
    ) == [
        "the column mapping names 'answer', which the prompt_completion format does not read; "
        "it reads: prompt, completion"
    ]
    assert messages(run(tmp_path, "data.csv", content, column_mapping={"prompt": 3})) == [
        "the column mapping must map field names to column names (got {'prompt': 3})"
    ]


def test_a_forced_format_names_the_column_the_file_lacks(tmp_path):
    assert messages(run(tmp_path, "data.csv", "text,label\na,b\n", format="prompt_completion")) == [
        "the prompt_completion format reads the column `prompt`, but the file has no such "
        "column (columns: text, label)"
    ]


def test_it_keeps_the_first_errors_and_counts_them_all(tmp_path):
    content = "not json\n" * 150 + jsonl({"text": "a"})
    report = run(tmp_path, "data.jsonl", content, error_limit=100)
    assert (report.error_count, len(report.errors)) == (150, 100)
    assert report.errors[0].line == 1
    assert report.errors[-1].line == 100
    assert report.format == "text"


def test_errors_stay_in_file_order_when_they_come_before_the_format_is_known(tmp_path):
    content = "oops\n" + jsonl({"text": 5}) + "oops\n" + jsonl({"text": "fine"})
    assert messages(run(tmp_path, "data.jsonl", content, error_limit=2)) == [
        "line 1: not valid JSON (Expecting value at column 1)",
        "line 2, `text`: must be text, got a number",
    ]


def test_a_failed_validation_removes_an_older_canonical_file_and_leaves_no_temporaries(tmp_path):
    (tmp_path / "out.jsonl").write_text("old\n")
    (tmp_path / "out.idx").write_bytes(b"old")
    run(tmp_path, "data.jsonl", jsonl(GOOD_CHAT) + "oops\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.jsonl"]
    assert not index_path(tmp_path / "out.jsonl").exists()
