"""Files real users bring, through the services, the page and the API: skipping a
few broken rows (offered, refused when it cannot help, stored and shown), and
the warnings of a file written by another tool."""

import json

import pytest
from django.contrib.messages import get_messages

from datasets_app import services
from datasets_app.models import Dataset
from tests.builders import upload

pytestmark = pytest.mark.django_db


def chat(question, answer):
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def broken_file() -> bytes:
    """Twenty chats; line 3 is not JSON and line 7 has a bad role."""
    lines = [json.dumps(chat(f"What comes after {i}?", str(i + 1))) for i in range(20)]
    lines[2] = '{"messages": [oops'
    lines[6] = json.dumps(
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Yo"}]}
    )
    return ("\n".join(lines) + "\n").encode()


SKIPPED = [
    {
        "line": 3,
        "field": None,
        "code": "invalid_json",
        "message": "line 3: not valid JSON (Expecting value at column 15)",
    },
    {
        "line": 7,
        "field": "messages[1].role",
        "code": "bad_role",
        "message": "line 7, `messages[1].role`: must be one of system, user, assistant (got 'bot')",
    },
]


def validated(dataset: Dataset) -> Dataset:
    services.run_validation(str(dataset.pk), dataset.revision)
    dataset.refresh_from_db()
    return dataset


def checked(owner, content=None, name="numbers.jsonl", **options) -> Dataset:
    dataset = services.create_dataset(
        owner, upload=upload(name, content or broken_file()), **options
    )
    return validated(dataset)


# --- services ----------------------------------------------------------------------------


def test_a_few_broken_rows_make_the_dataset_invalid_and_skippable(alice):
    dataset = checked(alice)
    assert (dataset.status, dataset.skippable, dataset.invalid_rows, dataset.num_rows) == (
        "invalid", True, 2, 18,
    )  # fmt: skip
    assert dataset.errors == SKIPPED
    assert (dataset.skipped_rows, dataset.skipped_errors) == (0, [])


def test_skipping_validates_again_and_keeps_the_rest_with_the_skipped_rows_listed(alice):
    dataset = checked(alice)
    skipping = services.skip_invalid_rows(dataset)
    assert (skipping.status, skipping.revision, skipping.skip_invalid_rows) == (
        "uploaded", 2, True,
    )  # fmt: skip
    assert skipping.skippable is False
    dataset = validated(skipping)
    assert dataset.status == "ready", dataset.errors
    assert (dataset.num_rows, dataset.skipped_rows, dataset.invalid_rows) == (18, 2, 2)
    assert (dataset.num_train_rows, dataset.num_validation_rows) == (16, 2)
    assert dataset.skipped_errors == SKIPPED
    assert (dataset.errors, dataset.error_count) == ([], 0)
    assert dataset.records_path.read_text().count("\n") == 18
    assert "What comes after 2?" not in dataset.records_path.read_text()


def test_a_dataset_uploaded_with_skipping_on_is_ready_at_once(alice):
    dataset = checked(alice, skip_invalid_rows=True)
    assert (dataset.status, dataset.skipped_rows, dataset.num_rows) == ("ready", 2, 18)


def test_skipping_is_refused_for_a_dataset_that_is_not_invalid(alice):
    dataset = checked(alice, skip_invalid_rows=True)
    with pytest.raises(services.DatasetStateError) as refusal:
        services.skip_invalid_rows(dataset)
    assert str(refusal.value) == (
        "Only a dataset whose check found broken rows can skip them; this one is ready."
    )
    again = services.skip_invalid_rows(checked(alice))
    with pytest.raises(services.DatasetStateError) as refusal:
        services.skip_invalid_rows(again)
    assert str(refusal.value) == (
        "Only a dataset whose check found broken rows can skip them; this one is uploaded."
    )


def test_skipping_is_refused_when_the_problem_is_the_whole_file(alice):
    dataset = checked(alice, b'{"question": "q", "answer": "a"}\n')
    assert (dataset.status, dataset.skippable) == ("invalid", False)
    with pytest.raises(services.DatasetStateError) as refusal:
        services.skip_invalid_rows(dataset)
    assert str(refusal.value) == (
        "The problems found are with the file as a whole, not with single rows, so skipping "
        "rows cannot help. Fix the file, or change how it is read (format, column names)."
    )
    assert Dataset.objects.get(pk=dataset.pk).revision == 1


def test_skipping_is_refused_when_every_row_is_broken(alice):
    dataset = checked(alice, b'{"messages": 1}\n{"messages": 2}\n{"messages": 3}\n')
    with pytest.raises(services.DatasetStateError) as refusal:
        services.skip_invalid_rows(dataset)
    assert str(refusal.value) == (
        "Every one of the 3 rows has a problem, so skipping the broken rows would leave nothing "
        "to train on. Fix the file, or change how it is read (format, column names)."
    )


def test_broken_rows_of_the_validation_file_are_skipped_too_and_say_which_file(alice):
    good = b"".join(json.dumps(chat(f"q{i}", f"a{i}")).encode() + b"\n" for i in range(10))
    dataset = services.create_dataset(
        alice,
        upload=upload("train.jsonl", broken_file()),
        validation_upload=upload("held-out.jsonl", good + b"not json\n"),
        skip_invalid_rows=True,
    )
    dataset = validated(dataset)
    assert dataset.status == "ready", dataset.errors
    assert (dataset.num_train_rows, dataset.num_validation_rows) == (18, 10)
    assert dataset.skipped_rows == 3
    assert dataset.skipped_errors[-1]["message"] == (
        "Validation file: line 11: not valid JSON (Expecting value at column 1)"
    )


def test_duplicate_rows_never_straddle_the_split(alice):
    rows = [chat(f"Question {i % 25}?", f"Answer {i % 25}.") for i in range(200)]
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    dataset = checked(alice, content)
    assert dataset.status == "ready", dataset.errors
    train = set(dataset.train_path.read_text().splitlines())
    held_out = set(dataset.validation_path.read_text().splitlines())
    assert held_out and not train & held_out


# --- the page --------------------------------------------------------------------------------


SKIP_BUTTON = (
    '<button type="submit" data-testid="skip-invalid-rows">'
    "Skip 2 broken rows and use the rest</button>"
)


def test_the_page_of_a_skippable_dataset_offers_the_button_as_a_real_form(alice_client, alice):
    dataset = checked(alice)
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    action = f"/datasets/{dataset.pk}/skip-invalid-rows/"
    assert f'<form method="post" action="{action}" hx-post="{action}"' in html
    assert SKIP_BUTTON in html
    assert "the problems are in 2 rows, and the other 18 rows are fine" in html


def test_the_page_offers_no_button_when_skipping_cannot_help(alice_client, alice):
    dataset = checked(alice, b'{"question": "q", "answer": "a"}\n')
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "skip-invalid-rows" not in html


def test_the_button_without_javascript_validates_again_and_comes_back(alice_client, alice):
    dataset = checked(alice)
    response = alice_client.post(f"/datasets/{dataset.pk}/skip-invalid-rows/")
    assert (response.status_code, response["Location"]) == (302, f"/datasets/{dataset.pk}/")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Skipping 2 broken rows; checking the file again."
    ]
    dataset.refresh_from_db()
    assert (dataset.status, dataset.skip_invalid_rows) == ("uploaded", True)


def test_the_button_from_htmx_swaps_in_the_live_progress(alice_client, alice):
    dataset = checked(alice)
    response = alice_client.post(
        f"/datasets/{dataset.pk}/skip-invalid-rows/", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="dataset-body">')
    assert f'ws-connect="/ws/datasets/{dataset.pk}/"' in html
    # In place: htmx would take an out-of-band element away to a target the page lacks.
    assert '<div id="dataset-progress" class="validation-progress">' in html
    assert "<html" not in html


def test_a_refused_skip_from_htmx_reloads_the_page_to_say_why(alice_client, alice):
    dataset = checked(alice, skip_invalid_rows=True)
    response = alice_client.post(
        f"/datasets/{dataset.pk}/skip-invalid-rows/", HTTP_HX_REQUEST="true"
    )
    assert (response.status_code, response["HX-Redirect"]) == (204, f"/datasets/{dataset.pk}/")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Only a dataset whose check found broken rows can skip them; this one is ready."
    ]


def test_a_ready_page_shows_the_skipped_count_and_rows_and_can_stop_skipping(alice_client, alice):
    dataset = checked(alice, skip_invalid_rows=True)
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert '<a href="#dataset-skipped" data-testid="dataset-skipped-rows">2 broken skipped</a>' in (
        html
    )
    assert "<strong>2 broken rows skipped</strong>" in html
    # The line and the field have columns of their own: the problem does not repeat them.
    assert (
        "<td>7</td><td><code>messages[1].role</code></td><td>must be one of system, user, "
        "assistant" in html
    )
    assert 'name="skip_invalid_rows" id="id_skip_invalid_rows" checked' in html
    alice_client.post(
        f"/datasets/{dataset.pk}/settings/",
        {"split_mode": "holdout", "validation_fraction": "0.1", "split_seed": "42"},
    )
    dataset = validated(Dataset.objects.get(pk=dataset.pk))
    assert (dataset.skip_invalid_rows, dataset.status, dataset.skippable) == (
        False,
        "invalid",
        True,
    )


def test_the_warnings_of_another_tools_file_are_on_the_page(alice_client, alice):
    rows = [{"text": f"Story {i}.", "id": i} for i in range(60)]
    rows[4] = {"text": "A system story."}
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    dataset = checked(alice, content)
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "`id` in 59 of 60 rows is not used by the text format." in html


def test_bob_gets_404_for_the_skip_button_of_alices_dataset(bob_client, alice):
    dataset = checked(alice)
    assert bob_client.post(f"/datasets/{dataset.pk}/skip-invalid-rows/").status_code == 404
    assert Dataset.objects.get(pk=dataset.pk).revision == 1


# --- the API -------------------------------------------------------------------------------


def test_the_api_shows_a_skippable_dataset_and_skips_on_request(alice_api, alice):
    dataset = checked(alice)
    detail = alice_api.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert {key: detail[key] for key in ("status", "skippable", "invalid_rows", "num_rows")} == {
        "status": "invalid",
        "skippable": True,
        "invalid_rows": 2,
        "num_rows": 18,
    }
    response = alice_api.post(f"/api/v1/datasets/{dataset.pk}/skip-invalid-rows/")
    assert response.status_code == 202, response.json()
    assert (response.json()["status"], response.json()["skip_invalid_rows"]) == ("uploaded", True)
    validated(Dataset.objects.get(pk=dataset.pk))
    detail = alice_api.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert (detail["status"], detail["skipped_rows"], detail["num_rows"]) == ("ready", 2, 18)
    assert detail["skipped_errors"] == SKIPPED
    assert (detail["errors"], detail["skippable"]) == ([], False)


def test_the_api_refuses_to_skip_when_it_cannot_help(alice_api, alice):
    dataset = checked(alice, b'{"question": "q", "answer": "a"}\n')
    response = alice_api.post(f"/api/v1/datasets/{dataset.pk}/skip-invalid-rows/")
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "conflict",
            "message": "The problems found are with the file as a whole, not with single rows, "
            "so skipping rows cannot help. Fix the file, or change how it is read (format, "
            "column names).",
        }
    }


def test_an_upload_can_ask_to_skip_and_a_patch_can_stop_it(alice_api, alice):
    response = alice_api.post(
        "/api/v1/datasets/",
        {"file": upload("numbers.jsonl", broken_file()), "skip_invalid_rows": "true"},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    dataset = validated(Dataset.objects.get(pk=response.json()["id"]))
    assert (dataset.status, dataset.skipped_rows) == ("ready", 2)
    # A form that leaves the field out changes nothing (no new check).
    renamed = alice_api.patch(
        f"/api/v1/datasets/{dataset.pk}/", {"name": "Numbers"}, format="multipart"
    )
    assert (renamed.json()["skip_invalid_rows"], renamed.json()["status"]) == (True, "ready")
    stopped = alice_api.patch(
        f"/api/v1/datasets/{dataset.pk}/", {"skip_invalid_rows": False}, format="json"
    )
    assert (stopped.json()["skip_invalid_rows"], stopped.json()["status"]) == (False, "uploaded")
    dataset = validated(Dataset.objects.get(pk=dataset.pk))
    assert (dataset.status, dataset.skippable, dataset.skipped_rows) == ("invalid", True, 0)


def test_bob_gets_404_for_the_skip_action_on_alices_dataset(bob_api, alice):
    dataset = checked(alice)
    response = bob_api.post(f"/api/v1/datasets/{dataset.pk}/skip-invalid-rows/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Dataset.objects.get(pk=dataset.pk).revision == 1
