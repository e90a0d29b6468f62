"""Validation runs are fenced by revision, and a failure ends as a message."""

from datetime import timedelta

import pytest
from django.utils import timezone

from datasets_app import services
from datasets_app.models import Dataset
from tests.builders import chat_jsonl, upload

pytestmark = pytest.mark.django_db


def new_dataset(owner, rows=20) -> Dataset:
    return services.create_dataset(owner, upload=upload("n.jsonl", chat_jsonl(rows)))


def test_a_run_for_an_old_revision_changes_nothing(alice):
    dataset = new_dataset(alice)
    services.change_settings(dataset, requested_format="chat")
    assert services.run_validation(str(dataset.pk), revision=1) == "superseded"
    dataset.refresh_from_db()
    assert (dataset.revision, dataset.status) == (2, "uploaded")
    assert services.run_validation(str(dataset.pk), revision=2) == "ready"


def test_a_finished_revision_is_not_validated_twice(alice):
    dataset = new_dataset(alice)
    assert services.run_validation(str(dataset.pk), dataset.revision) == "ready"
    assert services.run_validation(str(dataset.pk), dataset.revision) == "superseded"


def test_a_second_run_of_a_revision_in_progress_leaves_it_to_the_first(alice):
    dataset = new_dataset(alice)
    Dataset.objects.filter(pk=dataset.pk).update(
        status="validating", attempt=1, lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    assert services.run_validation(str(dataset.pk), dataset.revision) == "already-running"
    assert Dataset.objects.get(pk=dataset.pk).status == "validating"


def test_a_run_whose_lease_expired_is_taken_over_and_its_leftovers_replaced(alice):
    dataset = new_dataset(alice)
    leftover = dataset.output_folder() / "train.jsonl"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half a file from a run whose worker died")
    Dataset.objects.filter(pk=dataset.pk).update(
        status="validating", attempt=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.run_validation(str(dataset.pk), dataset.revision) == "ready"
    assert Dataset.objects.get(pk=dataset.pk).attempt == 2
    assert leftover.read_text().count("\n") == Dataset.objects.get(pk=dataset.pk).num_train_rows


def test_a_deleted_dataset_is_not_validated(alice):
    dataset = new_dataset(alice)
    services.delete_dataset(dataset)
    dataset.refresh_from_db()
    assert services.run_validation(str(dataset.pk), dataset.revision) == "superseded"


def test_a_file_gone_from_disk_ends_invalid_with_a_plain_message(alice):
    dataset = new_dataset(alice)
    dataset.source.storage.delete(dataset.source.name)
    assert services.run_validation(str(dataset.pk), dataset.revision) == "invalid"
    dataset.refresh_from_db()
    assert dataset.error_count == 1
    error = dataset.errors[0]
    assert error["message"] == (
        "Validation stopped with an unexpected error in the worker. Nothing was imported. "
        "Try again; if it happens again, tell an operator: they can see the error here."
    )
    # The exception, which names the server's path, is kept apart, for operators.
    assert error["detail"].startswith("FileNotFoundError: ")
    assert dataset.source.name in error["detail"]


def test_holding_out_needs_at_least_two_rows(alice):
    dataset = new_dataset(alice, rows=1)
    assert services.run_validation(str(dataset.pk), dataset.revision) == "invalid"
    dataset.refresh_from_db()
    assert dataset.errors[0]["message"] == (
        "The file has 1 row; holding some out for validation needs at least 2. "
        "Add rows or upload a separate validation file."
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"requested_format": "xml"}, "format", "Unknown format 'xml'; choose one of chat, prompt_completion, alpaca, sharegpt, text, text_label, preference, openai_preference, feedback."),
        ({"column_mapping": {"question": "q"}}, "column_mapping", "Cannot map onto 'question'; the fields are chosen, completion, conversations, input, instruction, label, messages, non_preferred_output, output, preferred_output, prompt, rejected, text."),
        ({"column_mapping": ["prompt"]}, "column_mapping", 'Column mapping must be an object such as {"prompt": "question"}.'),
        ({"split": services.SplitSettings(fraction=0.9)}, "validation_fraction", "Hold out between 1 % and 50 % of the rows (0.01 to 0.5)."),
        ({"split": services.SplitSettings(mode="file")}, "validation_file", "Upload a validation file, or hold out a fraction instead."),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_with_the_field_named(alice, kwargs, field, message):
    with pytest.raises(services.DatasetInputError) as error:
        services.create_dataset(alice, upload=upload("n.jsonl", chat_jsonl(5)), **kwargs)
    assert (error.value.field, error.value.message) == (field, message)
    assert not Dataset.objects.exists()


def test_an_empty_upload_is_refused(alice):
    with pytest.raises(services.DatasetInputError, match=r"'empty\.jsonl' is empty\."):
        services.create_dataset(alice, upload=upload("empty.jsonl", b""))


def test_the_operators_row_limit_holds_when_a_dataset_is_validated(alice, settings):
    settings.DATASET_MAX_ROWS = 5
    dataset = new_dataset(alice, rows=20)
    assert services.run_validation(str(dataset.pk), dataset.revision) == "invalid"
    dataset.refresh_from_db()
    assert dataset.errors[0]["code"] == "too_many_rows"
    assert "DATASET_MAX_ROWS" in dataset.errors[0]["message"]
