"""The format registry: each DatasetFormat record is whole and consistent, and
detection reads the records in an order that lets the more specific format win."""

import pytest

from datasets_app.engine import DATASET_FORMATS, FORMAT_BY_NAME, normalise_record
from datasets_app.engine.detect import format_of_keys
from jobs import vocabulary


@pytest.mark.parametrize("format", DATASET_FORMATS, ids=lambda format: format.name)
def test_a_formats_record_is_consistent(format):
    assert format.signature <= set(format.fields)
    assert format.optional <= set(format.fields)
    assert not format.signature & format.optional
    assert format.task in vocabulary.DATASET_TASKS
    assert format.label and format.shape


def test_format_names_and_detection_ranks_are_unique():
    assert len(FORMAT_BY_NAME) == len(DATASET_FORMATS)
    ranks = [format.detection_rank for format in DATASET_FORMATS]
    assert len(set(ranks)) == len(ranks)


@pytest.mark.parametrize(
    ("specific", "general"),
    [
        (specific, general)
        for specific in DATASET_FORMATS
        for general in DATASET_FORMATS
        if general.signature < specific.signature
    ],
    ids=lambda format: format.name,
)
def test_a_format_whose_signature_holds_anothers_is_detected_first(specific, general):
    assert specific.detection_rank < general.detection_rank


@pytest.mark.parametrize("format", DATASET_FORMATS, ids=lambda format: format.name)
def test_a_row_of_only_a_formats_signature_is_detected_as_it(format):
    assert format_of_keys(format.signature) == format.name


def test_normalise_record_uses_the_formats_normaliser():
    record, size, problems, empty = normalise_record(
        "prompt_completion", {"prompt": "Hi", "completion": "Hello"}, ("prompt", "completion")
    )
    assert record == {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    }
    assert (size, list(problems), empty) == (7, [], None)
