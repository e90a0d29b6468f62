"""The data report: lengths in the default model's tokens (or characters, and
why), errors that name their place once, numbered duplicate names, refused
long names, and the jobs a delete would touch."""

import json

import pytest

from datasets_app import engine, services
from datasets_app.engine import TokenRule, load_token_counter
from tests.builders import checked_upload, make_job, ready_sample, tickets_with_a_long_row, upload

pytestmark = pytest.mark.django_db


# --- lengths in tokens -------------------------------------------------------------


def test_a_long_row_is_counted_in_the_default_models_tokens_and_warned_about(alice, demo_models):
    dataset = checked_upload(alice, tickets_with_a_long_row())
    tokens = dataset.stats["tokens"]
    # 104 characters at the 95th percentile: the wizard's presets cut tailor-tiny's rows at 128.
    assert (tokens["model"], tokens["max_length"], tokens["rows_cut"]) == (
        "Tailor Tiny (demo, 3.6M)",
        128,
        1,
    )
    assert (tokens["p50"], tokens["max"]) == (70, 3905)
    assert sum(tokens["histogram"]["counts"]) == 60
    assert dataset.stats["length"]["unit"] == "characters"  # what job planning reads
    assert [warning["message"] for warning in dataset.warnings] == [
        "1 row is longer than 128 tokens and will be cut (line 42, 3,905 tokens): a job on "
        "Tailor Tiny (demo, 3.6M) keeps its first 128 tokens by default."
    ]
    assert dataset.warnings[0]["lines"] == [42]


def test_a_conversation_counts_what_the_chat_template_writes(demo_models):
    count = load_token_counter(demo_models.tiny_path(), "generation")
    hello = {"messages": [{"role": "user", "content": "hello there"},
                          {"role": "assistant", "content": "hi"}]}  # fmt: skip
    # <|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\nhi<|im_end|>\n,
    # as transformers' apply_chat_template tokenizes it.
    assert count([hello]) == [19]


def test_a_text_counts_with_the_classifiers_own_special_tokens(demo_models):
    count = load_token_counter(demo_models.minilm_path(), "classification")
    # [CLS] hello there [SEP]; the saved tokenizer's padding to 128 is left out.
    assert count([{"text": "hello there", "label": "x"}]) == [4]


def test_without_a_tokenizer_lengths_stay_in_characters_and_the_report_says_why(tmp_path):
    source = tmp_path / "tickets.jsonl"
    source.write_bytes(tickets_with_a_long_row())
    report = engine.validate(
        source,
        filename="tickets.jsonl",
        out_path=tmp_path / "out" / "records.jsonl",
        tokens=lambda task: load_token_counter(tmp_path, task),
    )
    assert report.ok
    assert "tokens" not in report.stats
    assert report.stats["length_note"] == (
        "Lengths are in characters: the tokenizer of the default model could not be loaded "
        "(its folder holds no tokenizer.json), so rows were not measured in tokens."
    )


def test_rows_under_the_cut_give_no_warning(tmp_path, demo_models):
    source = tmp_path / "tickets.jsonl"
    source.write_bytes(tickets_with_a_long_row(long_row=None))
    count = load_token_counter(demo_models.tiny_path(), "generation")
    report = engine.validate(
        source,
        filename="tickets.jsonl",
        out_path=tmp_path / "out" / "records.jsonl",
        tokens=lambda task: TokenRule("Tiny", count, lambda length: 128),
    )
    assert report.stats["tokens"]["rows_cut"] == 0
    assert report.warnings == []


# --- errors ---------------------------------------------------------------------------


def test_an_errors_problem_leaves_out_the_place_the_table_shows():
    error = engine.make_error("empty_reply", line=3, field="messages[1].content").as_dict()
    assert error["message"] == (
        "line 3, `messages[1].content`: must not be empty: it is what the model learns to write"
    )
    assert engine.problem_of(error) == "must not be empty: it is what the model learns to write"
    element = engine.make_error(
        "bad_array", line=30, where="element", reason="Expecting ',' delimiter", file_line=97,
        column=3,
    ).as_dict()  # fmt: skip
    assert (engine.where_of(element), engine.problem_of(element)) == (
        "element",
        "not valid JSON (Expecting ',' delimiter at line 97, column 3 of the file)",
    )


def test_a_json_syntax_error_is_a_file_that_cannot_be_parsed(alice, alice_client):
    records = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(25)]
    text = "[\n" + ",\n".join(json.dumps(record) for record in records) + "\n{oops}\n]\n"
    dataset = checked_upload(alice, text.encode(), name="broken.json")
    assert dataset.status == "invalid"
    assert dataset.columns == ["prompt", "completion"]
    assert dataset.errors[0]["code"] in engine.UNPARSEABLE
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "The file could not be read as JSON." in html
    assert "at line 27, column 1 of the file" in html
    assert "Column names" not in html


# --- names ----------------------------------------------------------------------------


def test_a_second_dataset_of_the_same_name_gets_a_number(alice, bob):
    first = services.create_dataset(
        alice, upload=upload("tickets.jsonl", tickets_with_a_long_row())
    )
    second = services.create_dataset(
        alice, upload=upload("tickets.jsonl", tickets_with_a_long_row())
    )
    third = services.create_dataset(alice, upload=upload("t.jsonl", tickets_with_a_long_row()),
                                    name="tickets")  # fmt: skip
    theirs = services.create_dataset(bob, upload=upload("tickets.jsonl", tickets_with_a_long_row()))
    assert [first.name, second.name, third.name, theirs.name] == [
        "tickets", "tickets (2)", "tickets (3)", "tickets",
    ]  # fmt: skip
    assert [first.name_was_taken, second.name_was_taken, theirs.name_was_taken] == [
        "", "tickets", "",
    ]  # fmt: skip


def test_a_numbered_long_name_stays_within_200_characters(alice):
    name = "x" * 200
    services.create_dataset(alice, upload=upload("a.jsonl", tickets_with_a_long_row()), name=name)
    second = services.create_dataset(
        alice, upload=upload("a.jsonl", tickets_with_a_long_row()), name=name
    )
    assert second.name == "x" * 196 + " (2)"


def test_an_over_long_name_is_refused_with_its_length(alice):
    with pytest.raises(services.DatasetInputError) as refused:
        services.create_dataset(
            alice, upload=upload("a.jsonl", tickets_with_a_long_row()), name="n" * 250
        )
    assert (refused.value.field, refused.value.message) == (
        "name",
        "The name is 250 characters long; keep it to 200 characters or fewer.",
    )


def test_the_upload_form_says_why_it_refuses_an_over_long_name(alice_client):
    response = alice_client.post(
        "/datasets/upload/",
        {"file": upload("a.jsonl", tickets_with_a_long_row()), "name": "n" * 250},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "Ensure this value has at most 200 characters (it has 250)." in html


# --- deleting -------------------------------------------------------------------------


def test_the_delete_confirmation_names_the_jobs_that_use_the_dataset(
    alice, alice_client, bob_client, demo_models
):
    dataset = ready_sample(alice)
    make_job(alice, dataset, name="Routing v1")
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert ">Routing v1</a>." in html
    assert "1 job uses this dataset:" in html
    assert "1 job uses it (Routing v1); it keeps its own copy of the rows and its results." in html
    assert bob_client.get(f"/datasets/{dataset.pk}/").status_code == 404


def test_a_dataset_no_job_uses_says_so(alice, alice_client):
    dataset = checked_upload(alice, tickets_with_a_long_row())
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "No job uses this dataset." in html
