"""Files written by other tools: what their users expect of a fine-tuning studio.

A chat row without a user turn is a warning (as OpenAI's data checks say);
columns the format does not read are named; and a few broken rows can be
skipped, visibly, while a problem with the whole file never can.
"""

import importlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_app.engine import index_path, validate
from datasets_app.engine.limits import DatasetLimits


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def run(tmp_path, rows, name="data.jsonl", **options):
    source = tmp_path / name
    if isinstance(rows, str | bytes):
        source.write_bytes(rows.encode() if isinstance(rows, str) else rows)
    else:
        write_jsonl(source, rows)
    return validate(source, filename=name, out_path=tmp_path / "out" / "records.jsonl", **options)


def records(tmp_path):
    path = tmp_path / "out" / "records.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def chat(*turns):
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


def distinct_chats(count):
    return [chat(("user", f"Question {i}?"), ("assistant", f"Answer {i}.")) for i in range(count)]


def warning(report, code):
    (found,) = [warning for warning in report.warnings if warning.code == code]
    return found.as_dict()


def codes(report):
    return [warning.code for warning in report.warnings]


# --- a system message and a reply, with no user turn -----------------------------------


def test_a_row_without_a_user_turn_is_kept_with_a_warning_that_names_it(tmp_path):
    rows = distinct_chats(60)
    rows[3] = chat(("system", "Greet the visitor."), ("assistant", "Welcome!"))
    rows[8] = chat(("system", "Say goodbye."), ("assistant", "Bye!"))
    report = run(tmp_path, rows)
    assert (report.ok, report.num_rows, report.errors) == (True, 60, [])
    assert warning(report, "no_user_message") == {
        "code": "no_user_message",
        "message": "2 rows have no user message, only a system message and a reply "
        "(the first: line 4); the model learns to write the reply from the system message "
        "alone.",
        "count": 2,
        "lines": [4, 9],
    }
    assert records(tmp_path)[3] == rows[3]


def test_one_row_without_a_user_turn_is_named_in_the_singular(tmp_path):
    rows = distinct_chats(60)
    rows[0] = chat(("system", "Greet the visitor."), ("assistant", "Welcome!"))
    assert warning(run(tmp_path, rows), "no_user_message")["message"] == (
        "1 row has no user message, only a system message and a reply (line 1); the model "
        "learns to write the reply from the system message alone."
    )


def test_a_sharegpt_row_of_a_system_turn_and_a_gpt_turn_is_kept_too(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": f"Hi {i}"}, {"from": "gpt", "value": "Yo"}]}
        for i in range(60)
    ]
    rows[5] = {
        "conversations": [
            {"from": "system", "value": "Be kind."},
            {"from": "gpt", "value": "Hello"},
        ]
    }
    report = run(tmp_path, rows)
    assert report.ok is True
    assert warning(report, "no_user_message")["lines"] == [6]
    assert records(tmp_path)[5] == chat(("system", "Be kind."), ("assistant", "Hello"))


def test_plain_text_rows_have_no_user_turn_by_design_and_get_no_warning(tmp_path):
    report = run(tmp_path, [{"text": f"Story number {i}."} for i in range(60)])
    assert report.ok is True
    assert report.warnings == []


# --- columns the format does not read --------------------------------------------------------


def test_a_column_the_detected_format_ignores_is_named(tmp_path):
    rows = [{"text": f"Story number {i}."} for i in range(5)]
    rows.append({"text": "A labelled story.", "label": "fable"})
    report = run(tmp_path, rows)
    assert (report.ok, report.format) == (True, "text")
    assert warning(report, "unused_columns") == {
        "code": "unused_columns",
        "message": "`label` in 1 of 6 rows is not used by the text format.",
        "count": 1,
        "lines": [6],
    }


def test_several_ignored_columns_are_listed_in_the_order_they_appear(tmp_path):
    rows = [{"id": i, "prompt": f"q{i}", "completion": f"a{i}"} for i in range(6)]
    rows[2]["source"] = "forum"
    rows[4]["source"] = "mail"
    report = run(tmp_path, rows)
    assert warning(report, "unused_columns") == {
        "code": "unused_columns",
        "message": "`id` in 6 of 6 rows and `source` in 2 of 6 rows are not used by the "
        "prompt_completion format.",
        "count": 6,
        "lines": [1, 2, 3, 4, 5, 6],
    }


@pytest.mark.parametrize("name", ["data.csv", "data.parquet"])
def test_a_header_column_the_format_ignores_is_named_for_every_row(tmp_path, name):
    rows = [
        {"id": str(i), "text": f"review {i}", "label": "good" if i % 2 else "bad"} for i in range(4)
    ]
    source = tmp_path / name
    if name.endswith(".csv"):
        source.write_text(
            "id,text,label\n" + "".join(f"{r['id']},{r['text']},{r['label']}\n" for r in rows)
        )
    else:
        pq.write_table(pa.Table.from_pylist(rows), source)
    report = validate(source, filename=name, out_path=tmp_path / "out" / "records.jsonl")
    assert (report.ok, report.format) == (True, "text_label")
    assert warning(report, "unused_columns") == {
        "code": "unused_columns",
        "message": "`id` in 4 of 4 rows is not used by the text_label format.",
        "count": 4,
        "lines": [],
    }


def test_mapped_and_optional_columns_are_used(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(60)]
    report = run(tmp_path, rows, column_mapping={"prompt": "question", "completion": "answer"})
    assert (report.ok, codes(report)) == (True, [])
    alpaca = [{"instruction": f"Say {i}.", "input": "", "output": str(i)} for i in range(60)]
    assert codes(run(tmp_path, alpaca, name="alpaca.jsonl")) == []


def test_only_so_many_ignored_columns_are_listed(tmp_path):
    rows = [{"text": f"row {i}", **{f"extra{k}": k for k in range(25)}} for i in range(2)]
    message = warning(run(tmp_path, rows), "unused_columns")["message"]
    assert message.startswith("`extra0` in 2 of 2 rows, `extra1` in 2 of 2 rows, ")
    assert message.endswith("`extra19` in 2 of 2 rows and 5 more are not used by the text format.")


@pytest.mark.parametrize("shapes_limit", [2, 1_000])
def test_rows_of_many_shapes_are_counted_exactly(tmp_path, monkeypatch, shapes_limit):
    # Rows are counted by their keys in order, up to a limit of shapes, then key by key.
    engine_validate = importlib.import_module("datasets_app.engine.unused")
    monkeypatch.setattr(engine_validate, "SHAPES_LIMIT", shapes_limit)
    rows = [{"text": f"row {i}", f"k{i % 4}": i, **({"id": i} if i % 3 else {})} for i in range(24)]
    rows += [{"text": "plain"}] * 6
    found = warning(run(tmp_path, rows), "unused_columns")
    assert (found["count"], found["lines"]) == (24, list(range(1, 11)))
    for part in ["`k0` in 6 of 30 rows", "`k3` in 6 of 30 rows", "`id` in 16 of 30 rows"]:
        assert part in found["message"]


# --- skipping broken rows ------------------------------------------------------------------


def broken_file():
    """Ten rows: line 3 is not JSON, line 7 has a bad role and an empty reply."""
    lines = [json.dumps(row) for row in distinct_chats(10)]
    lines[2] = '{"messages": [oops'
    lines[6] = json.dumps(chat(("user", "Hi"), ("bot", " ")))
    return "\n".join(lines) + "\n"


BROKEN_ROWS_MESSAGES = [
    "line 3: not valid JSON (Expecting value at column 15)",
    "line 7, `messages[1].role`: must be one of system, user, assistant (got 'bot')",
]


def test_broken_rows_fail_the_file_and_say_skipping_them_would_leave_a_dataset(tmp_path):
    report = run(tmp_path, broken_file())
    assert (report.ok, report.skippable, report.invalid_rows, report.num_rows) == (
        False, True, 2, 8,
    )  # fmt: skip
    assert [error.message for error in report.errors] == BROKEN_ROWS_MESSAGES
    assert (report.error_count, report.skipped_rows, report.skipped) == (2, 0, [])
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_skipping_keeps_the_other_rows_and_lists_the_skipped_ones(tmp_path):
    report = run(tmp_path, broken_file(), skip_invalid_rows=True)
    assert (report.ok, report.skippable, report.num_rows, report.rows_seen) == (True, False, 8, 10)
    assert (report.skipped_rows, report.invalid_rows) == (2, 2)
    assert [error.message for error in report.skipped] == BROKEN_ROWS_MESSAGES
    assert (report.errors, report.error_count) == ([], 0)
    kept = records(tmp_path)
    assert kept == [row for index, row in enumerate(distinct_chats(10)) if index not in (2, 6)]
    assert index_path(tmp_path / "out" / "records.jsonl").exists()
    assert report.stats["rows"] == 8


def test_skipping_a_file_without_broken_rows_changes_nothing(tmp_path):
    report = run(tmp_path, distinct_chats(60), skip_invalid_rows=True)
    assert (report.ok, report.num_rows, report.skipped_rows, report.skipped) == (True, 60, 0, [])


def test_a_row_with_several_problems_is_one_broken_row(tmp_path):
    rows = distinct_chats(4)
    rows[1] = {"messages": [{"role": "user"}, {"content": "x"}]}
    report = run(tmp_path, rows, skip_invalid_rows=True)
    assert (report.ok, report.skipped_rows, report.num_rows) == (True, 1, 3)
    assert [error.message for error in report.skipped] == [
        "line 2: missing `messages[0].content`",
        "line 2: missing `messages[1].role`",
    ]


def test_ragged_csv_rows_can_be_skipped(tmp_path):
    content = "text,label\ngood film,pos\nbad film\ndull,neg\nfine,pos,extra\n"
    report = run(tmp_path, content, name="data.csv", skip_invalid_rows=True)
    assert (report.ok, report.skipped_rows, report.num_rows) == (True, 2, 2)
    assert [error.message for error in report.skipped] == [
        "line 3: 1 columns, the header has 2",
        "line 5: 3 columns, the header has 2",
    ]
    assert records(tmp_path) == [
        {"text": "good film", "label": "pos"},
        {"text": "dull", "label": "neg"},
    ]


def test_rows_past_the_listed_errors_are_counted_and_skipped(tmp_path):
    content = "not json\n" * 5 + "".join(json.dumps(row) + "\n" for row in distinct_chats(30))
    report = run(tmp_path, content, error_limit=2)
    assert (report.ok, report.skippable, report.invalid_rows, report.error_count) == (
        False, True, 5, 5,
    )  # fmt: skip
    assert len(report.errors) == 2
    skipped = run(tmp_path, content, error_limit=2, skip_invalid_rows=True)
    assert (skipped.ok, skipped.skipped_rows, skipped.num_rows, len(skipped.skipped)) == (
        True, 5, 30, 2,
    )  # fmt: skip


def test_a_file_whose_every_row_is_broken_cannot_be_skipped(tmp_path):
    content = '{"messages": [\n{"text": 5}\n"just text"\n'
    report = run(tmp_path, content)
    assert (report.ok, report.skippable, report.invalid_rows, report.num_rows) == (
        False, False, 3, 0,
    )  # fmt: skip
    skipped = run(tmp_path, content, skip_invalid_rows=True)
    assert (skipped.ok, skipped.skipped_rows, skipped.skipped) == (False, 0, [])
    assert skipped.errors[-1].as_dict() == {
        "line": None,
        "field": None,
        "code": "nothing_left",
        "message": "every one of the 3 rows has a problem, so skipping the broken rows leaves "
        "nothing to train on",
    }
    assert skipped.error_count == 4
    assert not (tmp_path / "out" / "records.jsonl").exists()


@pytest.mark.parametrize("skip", [False, True], ids=["without-skipping", "skipping"])
def test_a_problem_with_the_whole_file_is_never_skippable(tmp_path, skip):
    content = broken_file() + "".join(json.dumps(row) + "\n" for row in distinct_chats(20))
    report = run(tmp_path, content, limits=DatasetLimits(max_rows=25), skip_invalid_rows=skip)
    assert (report.ok, report.skippable, report.skipped_rows) == (False, False, 0)
    assert report.errors[-1].message == (
        "the file holds more than 25 records, the most one dataset may hold here (DATASET_MAX_ROWS)"
    )
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_the_file_error_is_listed_even_past_the_listed_row_errors(tmp_path):
    content = "not json\n" * 5 + "".join(json.dumps(row) + "\n" for row in distinct_chats(100))
    report = run(tmp_path, content, error_limit=2, limits=DatasetLimits(max_rows=50))
    assert [error.code for error in report.errors] == [
        "invalid_json",
        "invalid_json",
        "too_many_rows",
    ]
    assert report.error_count == 6


@pytest.mark.parametrize(
    "content",
    [
        "",
        '{"question": "q", "answer": "a"}\n',
        b"\xff\xfe\x00t\x00e\x00x\x00t\x00",
    ],
    ids=["empty", "no-format", "not-utf-8"],
)
@pytest.mark.parametrize("skip", [False, True], ids=["without-skipping", "skipping"])
def test_an_unreadable_file_is_not_skippable(tmp_path, content, skip):
    report = run(tmp_path, content, skip_invalid_rows=skip)
    assert (report.ok, report.skippable, report.skipped_rows) == (False, False, 0)


def test_the_rows_kept_are_judged_as_a_whole_once_the_broken_ones_are_skipped(tmp_path):
    rows = [{"text": f"review {i}", "label": "good"} for i in range(6)]
    rows[2] = {"text": "awful", "label": ["bad"]}
    report = run(tmp_path, rows)
    # Until the broken row is left out, one label among the rest may be chance.
    assert (report.ok, report.skippable) == (False, True)
    skipped = run(tmp_path, rows, skip_invalid_rows=True)
    assert (skipped.ok, skipped.skippable) == (False, False)
    assert [error.message for error in skipped.errors] == [
        "line 3, `label`: must be text or a number, got a list",
        "only one label (good) in 5 rows; a classifier needs at least two",
    ]
