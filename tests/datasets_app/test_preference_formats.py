"""Preference data: pairs of answers (prompt / chosen / rejected, and OpenAI's DPO
file as OpenAI documents it) and answers marked good or bad (KTO), from every
file type into canonical records, with their row errors, detection,
statistics, warnings and their preview."""

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_app import engine
from datasets_app.engine import load_token_counter, read_page, split, validate
from datasets_app.engine.detect import detect_format
from datasets_app.engine.preference import FEEDBACK_LABELS
from tests.builders import checked_upload, upload
from tests.processes import fits_the_screen, log_in


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


def write_rows(path: Path, rows: list[dict]) -> Path:
    """`rows` as the file type the name says; in CSV, lists and objects are JSON text."""
    file_type = engine.detect_file_type(path.name)
    if file_type == "jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    elif file_type == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=2))
    elif file_type in ("csv", "tsv"):
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with open(path, "w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file, delimiter="," if file_type == "csv" else "\t")
            writer.writerow(columns)
            for row in rows:
                writer.writerow(
                    [
                        json.dumps(value, ensure_ascii=False)
                        if isinstance(value, list | dict)
                        else value
                        for value in (row.get(column) for column in columns)
                    ]
                )
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def check(tmp_path: Path, name: str, rows: list[dict], **options):
    source = write_rows(tmp_path / name, rows)
    out = tmp_path / "canonical" / "records.jsonl"
    report = validate(source, filename=name, out_path=out, **options)
    records = [json.loads(line) for line in out.read_text().splitlines()] if report.ok else []
    return report, records


def messages(report) -> list[str]:
    return [error.message for error in report.errors]


# OpenAI's own example line (its DPO guide), as a file prepared for OpenAI holds it.
OPENAI_EXAMPLE = {
    "input": {
        "messages": [
            {"role": "user", "content": "Hello, can you tell me how cold San Francisco is today?"}
        ],
        "tools": [],
        "parallel_tool_calls": True,
    },
    "preferred_output": [
        {
            "role": "assistant",
            "content": "Today in San Francisco, it is not quite cold as expected. Morning clouds "
            "will give away to sunshine, with a high near 68°F (20°C) and a low around 57°F "
            "(14°C).",
        }
    ],
    "non_preferred_output": [
        {"role": "assistant", "content": "It is not particularly cold in San Francisco today."}
    ],
}
OPENAI_RECORD = {
    "messages": [user("Hello, can you tell me how cold San Francisco is today?")],
    "chosen": OPENAI_EXAMPLE["preferred_output"][0]["content"],
    "rejected": "It is not particularly cold in San Francisco today.",
}

# format -> (source rows, canonical records); the rows of one sample keep one
# type per column, as a Parquet column must.
SAMPLES = {
    "preference (text)": (
        [
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon, I think."},
            {"prompt": "Café in English?", "chosen": "Coffee.", "rejected": "Tea."},
        ],
        [
            {
                "messages": [user("Capital of France?")],
                "chosen": "Paris.",
                "rejected": "Lyon, I think.",
            },
            {"messages": [user("Café in English?")], "chosen": "Coffee.", "rejected": "Tea."},
        ],
    ),
    # TRL's conversational preference format: the answers as assistant messages.
    "preference (messages)": (
        [
            {
                "prompt": [system("Be brief."), user("Capital of France?")],
                "chosen": [assistant("Paris.")],
                "rejected": [assistant("It is Lyon.")],
            },
            {
                "prompt": [user("2 + 2?"), assistant("4"), user("Times 3?")],
                "chosen": [assistant("12")],
                "rejected": [assistant("7")],
            },
        ],
        [
            {
                "messages": [system("Be brief."), user("Capital of France?")],
                "chosen": "Paris.",
                "rejected": "It is Lyon.",
            },
            {
                "messages": [user("2 + 2?"), assistant("4"), user("Times 3?")],
                "chosen": "12",
                "rejected": "7",
            },
        ],
    ),
    # Whole conversations that repeat the prompt: the answer is the last turn.
    "preference (conversations)": (
        [
            {
                "prompt": [user("東京は?")],
                "chosen": [user("東京は?"), assistant("Tokyo.")],
                "rejected": [user("東京は?"), assistant("Kyoto.")],
            },
            {
                "prompt": [user("Hi")],
                "chosen": [user("Hi"), assistant("Hello!")],
                "rejected": [user("Hi"), assistant("What?")],
            },
        ],
        [
            {"messages": [user("東京は?")], "chosen": "Tokyo.", "rejected": "Kyoto."},
            {"messages": [user("Hi")], "chosen": "Hello!", "rejected": "What?"},
        ],
    ),
    "openai_preference": (
        [
            OPENAI_EXAMPLE,
            {
                "input": {
                    "messages": [system("Be brief."), user("2 + 2?")],
                    "tools": [],
                    "parallel_tool_calls": False,
                },
                "preferred_output": [assistant("4")],
                "non_preferred_output": [assistant("5")],
            },
        ],
        [
            OPENAI_RECORD,
            {"messages": [system("Be brief."), user("2 + 2?")], "chosen": "4", "rejected": "5"},
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
FORMAT_OF_SAMPLE = {"openai_preference": "openai_preference", "feedback": "feedback"}
TASK_OF_SAMPLE = {"feedback": "feedback"}


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("file_type", ["jsonl", "json", "csv", "tsv", "parquet"])
def test_each_preference_format_in_each_file_type_becomes_canonical_records(
    tmp_path, file_type, sample
):
    rows, expected = SAMPLES[sample]
    report, records = check(tmp_path, f"pairs.{file_type}", rows)
    assert report.errors == []
    assert (report.ok, report.file_type) == (True, file_type)
    assert report.format == FORMAT_OF_SAMPLE.get(sample, "preference")
    assert report.task == TASK_OF_SAMPLE.get(sample, "preference")
    assert records == expected
    assert read_page(tmp_path / "canonical" / "records.jsonl", offset=1, limit=5) == expected[1:]


def test_openais_example_file_validates_unchanged(tmp_path):
    # Keys of `input` other than `messages` (tools, parallel_tool_calls) are OpenAI's to
    # read; the file is taken as it is, with no warning about them.
    report, records = check(tmp_path, "openai.jsonl", [OPENAI_EXAMPLE] * 3)
    assert (report.ok, report.format) == (True, "openai_preference")
    assert records == [OPENAI_RECORD] * 3
    assert not [warning for warning in report.warnings if warning.code == "unused_columns"]


def test_a_prompt_may_open_with_the_assistants_greeting(tmp_path):
    row = {
        "input": {"messages": [assistant("Hello, how can I help?"), user("The Roman Empire?")]},
        "preferred_output": [assistant("It rose from a city-state.")],
        "non_preferred_output": [assistant("No idea.")],
    }
    report, records = check(tmp_path, "openai.jsonl", [row])
    assert report.ok
    assert records[0]["messages"] == row["input"]["messages"]


def test_a_csv_cell_of_text_that_starts_with_a_bracket_stays_text(tmp_path):
    rows = [{"prompt": "[1, 2, 3]: sort it", "chosen": "[1, 2, 3]", "rejected": "[3, 2, 1]"}]
    report, records = check(tmp_path, "pairs.csv", rows)
    assert report.ok
    assert records == [
        {"messages": [user("[1, 2, 3]: sort it")], "chosen": "[1, 2, 3]", "rejected": "[3, 2, 1]"}
    ]


@pytest.mark.parametrize(
    ("value", "label"),
    [(value, label) for value, label in FEEDBACK_LABELS.items()]
    + [(True, True), (False, False), (1, True), (0, False), (1.0, True), ("  Yes ", True),
       ("GOOD", True), ("👎", False)],
)  # fmt: skip
def test_feedback_labels_are_read_generously(tmp_path, value, label):
    row = {"prompt": "Capital of France?", "completion": "Paris.", "label": value}
    report, records = check(tmp_path, "feedback.jsonl", [row])
    assert report.ok, messages(report)
    assert records[0]["label"] is label


# --- row errors ----------------------------------------------------------------------


PAIR = {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}


@pytest.mark.parametrize(
    ("row", "errors"),
    [
        pytest.param(
            {"prompt": "Capital of France?", "chosen": "Paris."},
            ["line 2: missing `rejected`: a preference pair needs both of its answers"],
            id="missing-side",
        ),
        pytest.param(
            {"prompt": "Capital of France?", "chosen": None, "rejected": "Lyon."},
            ["line 2: missing `chosen`: a preference pair needs both of its answers"],
            id="null-side",
        ),
        pytest.param(
            {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": " Paris.\n"},
            ["line 2, `rejected`: is the same answer as `chosen`: a pair teaches a preference "
             "only when its answers differ"],
            id="identical-sides",
        ),
        pytest.param(
            {"prompt": "Capital of France?", "chosen": "  ", "rejected": "Lyon."},
            ["line 2, `chosen`: must not be empty: it is an answer the model learns to prefer "
             "or avoid"],
            id="empty-answer",
        ),
        pytest.param(
            {"prompt": "Capital of France?", "chosen": [assistant("Paris.")],
             "rejected": [assistant("")]},
            ["line 2, `rejected[0].content`: must not be empty: it is an answer the model "
             "learns to prefer or avoid"],
            id="empty-answer-message",
        ),
        pytest.param(
            {"prompt": [user("Capital of France?"), assistant("Paris.")], "chosen": "Yes.",
             "rejected": "No."},
            ["line 2, `prompt[1].role`: the prompt must end with a user message, which the "
             "answers reply to (got 'assistant')"],
            id="prompt-ends-with-the-assistant",
        ),
        pytest.param(
            {"prompt": [], "chosen": "Yes.", "rejected": "No."},
            ["line 2, `prompt`: must hold at least one user message, got an empty list"],
            id="empty-prompt",
        ),
        pytest.param(
            {"prompt": [user("Hi"), user("Hello?")], "chosen": "Yes.", "rejected": "No."},
            ["line 2, `prompt[1].role`: expected assistant after user (user and assistant "
             "messages alternate), got 'user'"],
            id="prompt-out-of-order",
        ),
        pytest.param(
            {"prompt": [user("Hi"), system("Be brief.")], "chosen": "Yes.", "rejected": "No."},
            ["line 2, `prompt[1].role`: a system message may only come first"],
            id="late-system-message",
        ),
        pytest.param(
            {"prompt": [user("Hi")], "chosen": [assistant("Hello"), user("Well?")],
             "rejected": "No."},
            ["line 2, `chosen`: must be the answer: text, or a list ending in one assistant "
             "message, after the prompt's messages if it repeats them (got a list ending in "
             "'user')"],
            id="answer-ends-with-the-user",
        ),
        pytest.param(
            {"prompt": [user("Hi")], "chosen": "Hello.",
             "rejected": [user("Something else"), assistant("Bye.")]},
            ["line 2, `rejected`: must be the answer: text, or a list ending in one assistant "
             "message, after the prompt's messages if it repeats them (got messages before the "
             "answer that are not the prompt's)"],
            id="answer-repeats-another-prompt",
        ),
        pytest.param(
            {"prompt": 42, "chosen": {"text": "Hello"}, "rejected": "No."},
            ["line 2, `prompt`: must be text or a list of messages, got a number",
             "line 2, `chosen`: must be text or a list of messages, got an object"],
            id="wrong-types",
        ),
    ],
)  # fmt: skip
def test_a_broken_pair_names_its_line_field_and_reason(tmp_path, row, errors):
    report, _ = check(tmp_path, "pairs.jsonl", [PAIR, row], format="preference")
    assert report.ok is False
    assert messages(report) == errors


@pytest.mark.parametrize(
    ("row", "errors"),
    [
        pytest.param(
            {"input": {"tools": []}, "preferred_output": [assistant("A")],
             "non_preferred_output": [assistant("B")]},
            ["line 1: missing `input.messages`"],
            id="no-messages",
        ),
        pytest.param(
            {"input": [user("Hi")], "preferred_output": [assistant("A")],
             "non_preferred_output": [assistant("A")]},
            ["line 1, `input`: must be an object with `messages`, got a list",
             "line 1, `non_preferred_output`: is the same answer as `preferred_output`: a pair "
             "teaches a preference only when its answers differ"],
            id="input-not-an-object",
        ),
        pytest.param(
            {"input": {"messages": [user("Hi")]}, "preferred_output": [assistant("A")]},
            ["line 1: missing `non_preferred_output`: a preference pair needs both of its "
             "answers"],
            id="missing-side",
        ),
        pytest.param(
            {"input": {"messages": [user("Hi"), assistant("A")]},
             "preferred_output": [assistant("B")], "non_preferred_output": [assistant("C")]},
            ["line 1, `input.messages[1].role`: the prompt must end with a user message, which "
             "the answers reply to (got 'assistant')"],
            id="prompt-ends-with-the-assistant",
        ),
        pytest.param(
            {"input": {"messages": [user("Hi")]}, "preferred_output": [{"role": "bot",
             "content": "A"}], "non_preferred_output": [assistant("C")]},
            ["line 1, `preferred_output[0].role`: must be one of system, user, assistant "
             "(got 'bot')"],
            id="bad-role",
        ),
    ],
)  # fmt: skip
def test_a_broken_openai_line_names_its_field_and_reason(tmp_path, row, errors):
    report, _ = check(tmp_path, "openai.jsonl", [row], format="openai_preference")
    assert messages(report) == errors


@pytest.mark.parametrize(
    ("row", "errors"),
    [
        pytest.param(
            {"prompt": "Hi", "completion": "Hello", "label": "maybe"},
            ["line 1, `label`: must say whether the answer is good: true/false, 1/0, yes/no, "
             "good/bad or 👍/👎 (got 'maybe')"],
            id="bad-label",
        ),
        pytest.param(
            {"prompt": "Hi", "completion": "Hello", "label": 5},
            ["line 1, `label`: must say whether the answer is good: true/false, 1/0, yes/no, "
             "good/bad or 👍/👎 (got 5)"],
            id="number-label",
        ),
        pytest.param(
            {"prompt": "Hi", "completion": "", "label": True},
            ["line 1, `completion`: must not be empty: it is an answer the model learns to "
             "prefer or avoid"],
            id="empty-answer",
        ),
        pytest.param(
            {"prompt": "Hi", "label": True},
            ["line 1: missing `completion`"],
            id="missing-answer",
        ),
    ],
)  # fmt: skip
def test_broken_feedback_names_its_field_and_reason(tmp_path, row, errors):
    report, _ = check(tmp_path, "feedback.jsonl", [row], format="feedback")
    assert messages(report) == errors


def test_a_csv_rows_error_names_its_line(tmp_path):
    report, _ = check(tmp_path, "pairs.csv", [PAIR, {**PAIR, "rejected": "Paris."}])
    assert report.format == "preference"
    assert messages(report) == [
        "line 3, `rejected`: is the same answer as `chosen`: a pair teaches a preference only "
        "when its answers differ"
    ]


def test_a_mapped_column_is_named_by_its_own_name(tmp_path):
    rows = [{"question": "Hi", "better": "Hello", "worse": "Hello"}]
    report, _ = check(
        tmp_path, "pairs.jsonl", rows, column_mapping={"prompt": "question", "chosen": "better",
                                                      "rejected": "worse"}
    )  # fmt: skip
    assert report.format == "preference"
    assert messages(report) == [
        "line 1, `worse`: is the same answer as `better`: a pair teaches a preference only when "
        "its answers differ"
    ]


# --- detection -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "format"),
    [
        (["prompt", "completion", "label"], "feedback"),
        (["id", "label", "completion", "prompt"], "feedback"),
        (["prompt", "completion"], "prompt_completion"),
        (["prompt", "chosen", "rejected"], "preference"),
        (["input", "preferred_output", "non_preferred_output"], "openai_preference"),
        (["text", "label"], "text_label"),
    ],
)
def test_each_format_is_detected_from_its_keys(keys, format):
    assert detect_format([keys]) == format


def test_a_feedback_file_is_not_read_as_prompt_completion(tmp_path):
    rows = [{"prompt": "Hi", "completion": "Hello", "label": "👍"}] * 2
    report, records = check(tmp_path, "feedback.csv", rows)
    assert (report.format, report.task) == ("feedback", "feedback")
    assert records[0] == {"messages": [user("Hi")], "completion": "Hello", "label": True}


# --- statistics and warnings -----------------------------------------------------------


def pairs(count: int, *, chosen_longer: int) -> list[dict]:
    """`count` different pairs; in the first `chosen_longer` the chosen answer is the longer."""
    return [
        {
            "prompt": f"Question {index}?",
            "chosen": "A full answer." if index < chosen_longer else "Short.",
            "rejected": "Short." if index < chosen_longer else "A full answer.",
        }
        for index in range(count)
    ]


def test_pair_statistics_count_the_prompt_with_its_longer_answer(tmp_path):
    rows = [
        {"prompt": [system("Be brief."), user("Hi")], "chosen": "Hello!", "rejected": "Hey"},
        {"prompt": "Question?", "chosen": "No", "rejected": "Yes, it is"},
    ]
    report, _ = check(tmp_path, "pairs.jsonl", rows)
    stats = report.stats
    # 9 + 2 + 6, and 9 + 10.
    assert (stats["length"]["min"], stats["length"]["max"]) == (17, 19)
    assert (stats["turns"]["mean"], stats["turns"]["max"]) == (1.5, 2)
    assert stats["roles"] == {"system": 1, "user": 2, "assistant": 0}
    assert stats["preference"] == {
        "chosen_longer": 1,
        "chosen_shorter": 1,
        "chosen_longer_share": 0.5,
    }


def test_chosen_answers_that_are_nearly_always_longer_are_warned_about(tmp_path):
    report, _ = check(tmp_path, "pairs.jsonl", pairs(60, chosen_longer=57))
    assert [warning.message for warning in report.warnings] == [
        "In 95.0% of the pairs (57 of 60) the chosen answer is the longer one: DPO may learn to "
        "prefer long answers rather than good ones."
    ]


def test_chosen_answers_that_are_nearly_always_shorter_are_warned_about(tmp_path):
    report, _ = check(tmp_path, "pairs.jsonl", pairs(60, chosen_longer=3))
    assert [warning.message for warning in report.warnings] == [
        "In only 5.0% of the pairs (3 of 60) is the chosen answer the longer one: DPO may learn "
        "to prefer short answers rather than good ones."
    ]


def test_pairs_of_mixed_lengths_and_few_pairs_give_no_length_warning(tmp_path):
    report, _ = check(tmp_path, "pairs.jsonl", pairs(60, chosen_longer=30))
    assert report.warnings == []
    report, _ = check(tmp_path, "few.jsonl", pairs(9, chosen_longer=9))
    assert [warning.code for warning in report.warnings] == ["few_rows"]


def test_a_repeated_pair_is_a_duplicate_and_stays_on_one_side_of_the_split(tmp_path):
    rows = pairs(60, chosen_longer=30)
    rows[40] = rows[10]
    # The same prompt and answers the other way round is another pair.
    rows[41] = {**rows[11], "chosen": rows[11]["rejected"], "rejected": rows[11]["chosen"]}
    report, _ = check(tmp_path, "pairs.jsonl", rows)
    assert [warning.message for warning in report.warnings] == [
        "1 row repeats an earlier row exactly (line 41, a copy of line 11)."
    ]
    canonical = tmp_path / "canonical" / "records.jsonl"
    sides = (tmp_path / "train.jsonl", tmp_path / "validation.jsonl")
    assert split(canonical, num_rows=60, fraction=0.5, seed=7, train_out=sides[0],
                 validation_out=sides[1]) == (30, 30)  # fmt: skip
    held = [line for line in sides[1].read_text().splitlines() if "Question 10?" in line]
    assert len(held) in (0, 2)


def test_feedback_statistics_count_good_and_bad_answers(tmp_path):
    rows = [
        {"prompt": f"Question {index}?", "completion": "Answer.", "label": index % 3 != 0}
        for index in range(60)
    ]
    report, _ = check(tmp_path, "feedback.jsonl", rows)
    assert report.stats["labels"] == [
        {"label": "good", "count": 40},
        {"label": "bad", "count": 20},
    ]
    assert report.warnings == []


@pytest.mark.parametrize(("bad", "share"), [(2, "3.3%"), (0, "0.0%")])
def test_feedback_with_few_bad_answers_is_warned_about(tmp_path, bad, share):
    rows = [
        {"prompt": f"Question {index}?", "completion": "Answer.", "label": index >= bad}
        for index in range(60)
    ]
    report, _ = check(tmp_path, "feedback.jsonl", rows)
    assert [warning.message for warning in report.warnings] == [
        f"The feedback is imbalanced: {bad} of 60 answers ({share}) are marked bad; KTO learns "
        "best from about as many good answers as bad (TRL suggests between 1:1 and 4:3)."
    ]


def test_a_pair_counts_its_prompt_with_its_longer_answer_in_tokens(demo_models):
    count_pairs = load_token_counter(demo_models.tiny_path(), "preference")
    count_chats = load_token_counter(demo_models.tiny_path(), "generation")
    prompt = [user("hello there")]
    pair = {"messages": prompt, "chosen": "hi", "rejected": "hello to you, and good day"}
    longer = {"messages": [*prompt, assistant("hello to you, and good day")]}
    assert count_pairs([pair]) == count_chats([longer])
    count_feedback = load_token_counter(demo_models.tiny_path(), "feedback")
    answer = {"messages": prompt, "completion": "hi", "label": True}
    assert count_feedback([answer]) == count_chats([{"messages": [*prompt, assistant("hi")]}])


# --- the studio: report, preview, upload form ------------------------------------------


PAGE_PAIRS = [
    {"prompt": f"Question {index}?", "chosen": f"Good answer {index}",
     "rejected": f"<b>Bad</b> answer {index}"}
    for index in range(12)
]  # fmt: skip


@pytest.mark.django_db
def test_the_preview_shows_the_prompt_and_both_answers_side_by_side(
    alice_client, alice, demo_models
):
    content = "".join(json.dumps(row) + "\n" for row in PAGE_PAIRS)
    dataset = checked_upload(alice, content.encode(), name="pairs.jsonl")
    assert dataset.status == "ready", dataset.errors
    assert (dataset.format, dataset.task) == ("preference", "preference")
    # Measured as a job on the default causal LM reads a pair: prompt and longer answer.
    assert dataset.stats["tokens"]["model"] == "Tailor Tiny (demo, 3.6M)"
    assert sum(dataset.stats["tokens"]["histogram"]["counts"]) == 12
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert (
        '<strong data-testid="dataset-format">Preference pairs (prompt / chosen / rejected)'
        "</strong>" in html
    )
    assert '<div class="bubble bubble-user"><span class="role">user</span>' in html
    assert (
        '<div class="bubble bubble-assistant preference-side"><span class="role">Chosen</span>'
        '<div class="content">Good answer' in html
    )
    assert (
        '<div class="bubble bubble-rejected preference-side"><span class="role">Rejected</span>'
        '<div class="content">&lt;b&gt;Bad&lt;/b&gt; answer' in html
    )
    assert "<b>Bad</b>" not in html
    assert "Turns per prompt" in html
    assert 'data-testid="chosen-longer">The chosen answer is the longer one in 0%' in html


@pytest.mark.django_db
def test_the_preview_shows_a_feedback_answer_with_its_verdict(alice_client, alice):
    rows = [
        {"prompt": f"Question {index}?", "completion": f"Answer {index}", "label": index % 2}
        for index in range(12)
    ]
    content = "".join(json.dumps(row) + "\n" for row in rows)
    dataset = checked_upload(alice, content.encode(), name="feedback.jsonl")
    assert (dataset.status, dataset.task) == ("ready", "feedback")
    html = alice_client.get(f"/datasets/{dataset.pk}/preview/", HTTP_HX_REQUEST="true")
    html = html.content.decode()
    assert '<span class="badge badge-good">good</span>' in html
    assert '<span class="badge badge-bad">bad</span>' in html
    assert '<div class="content">Answer 1</div>' in html


@pytest.mark.django_db
def test_bob_gets_404_for_the_preview_of_alices_pairs(bob_client, alice):
    content = "".join(json.dumps(row) + "\n" for row in PAGE_PAIRS)
    dataset = checked_upload(alice, content.encode(), name="pairs.jsonl")
    assert bob_client.get(f"/datasets/{dataset.pk}/preview/").status_code == 404


@pytest.mark.django_db
def test_the_upload_form_and_the_settings_offer_the_preference_formats(alice_client, alice):
    html = alice_client.get("/datasets/").content.decode()
    assert "Text / label, Preference pairs, OpenAI preference or Answer feedback" in html
    dataset = checked_upload(alice, b'{"x": 1}\n', name="n.jsonl")
    assert dataset.status == "invalid"
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    for name in ("preference", "openai_preference", "feedback"):
        assert f'<option value="{name}">' in html


@pytest.mark.django_db
def test_the_api_accepts_the_preference_formats_by_name(alice_api):
    line = json.dumps(OPENAI_EXAMPLE) + "\n"
    response = alice_api.post(
        "/api/v1/datasets/",
        {"file": upload("openai.jsonl", line), "format": "openai_preference"},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["requested_format"] == "openai_preference"
    response = alice_api.post(
        "/api/v1/datasets/", {"file": upload("x.jsonl", line), "format": "dpo"}, format="multipart"
    )
    assert response.status_code == 400


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("width", "side_by_side"), [(1280, True), (390, False)])
def test_in_chromium_the_answers_sit_side_by_side_on_a_wide_screen_and_stack_on_a_phone(
    browser, live_server_url, alice, width, side_by_side
):
    content = "".join(json.dumps(row) + "\n" for row in PAGE_PAIRS)
    dataset = checked_upload(alice, content.encode(), name="pairs.jsonl")
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        log_in(page, live_server_url, "alice")
        page.goto(f"{live_server_url}/datasets/{dataset.pk}/")
        row = page.locator(".preview-row").first
        chosen = row.locator(".preference-side").nth(0).bounding_box()
        rejected = row.locator(".preference-side").nth(1).bounding_box()
        assert (chosen["y"] == rejected["y"]) is side_by_side
        assert (rejected["x"] > chosen["x"] + chosen["width"]) is side_by_side
        assert fits_the_screen(page)
    finally:
        context.close()
