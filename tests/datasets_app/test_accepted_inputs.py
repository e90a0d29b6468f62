"""The accepted file extensions and the validation-fraction range have one
definition each (engine.formats, engine.split); the upload page, the settings
form, the API and the engine's sentences all say the same."""

import pytest

from datasets_app import engine
from datasets_app.forms import SettingsForm
from tests.builders import chat_jsonl, upload

pytestmark = pytest.mark.django_db

EVERY_EXTENSION = ".jsonl,.ndjson,.json,.csv,.tsv,.tab,.parquet,.pq"


def test_the_upload_page_accepts_every_extension_the_engine_reads(alice_client):
    html = alice_client.get("/datasets/").content.decode()
    assert engine.ACCEPT == EVERY_EXTENSION
    assert f'id="id_file" required accept="{EVERY_EXTENSION}"' in html
    assert f'id="id_validation_file" accept="{EVERY_EXTENSION}"' in html


def test_the_engine_names_every_extension_for_a_file_it_cannot_place(tmp_path):
    source = tmp_path / "notes.txt"
    source.write_bytes(b"hello\n")
    report = engine.validate(source, filename="notes.txt", out_path=tmp_path / "out.jsonl")
    assert [error.message for error in report.errors] == [
        "cannot tell the file type from the name 'notes.txt'; accepted extensions: "
        ".jsonl, .ndjson, .json, .csv, .tsv, .tab, .parquet, .pq"
    ]


@pytest.mark.parametrize(
    ("fraction", "code", "message"),
    [
        (0.005, "min_value", "greater than or equal to 0.01"),
        (0.51, "max_value", "less than or equal to 0.5"),
    ],
)
def test_the_api_refuses_a_fraction_outside_the_range(alice_api, fraction, code, message):
    response = alice_api.post(
        "/api/v1/datasets/",
        {"file": upload("n.jsonl", chat_jsonl(10)), "validation_fraction": fraction},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": code,
            "message": f"validation_fraction: Ensure this value is {message}.",
            "field": "validation_fraction",
        }
    }


@pytest.mark.parametrize("fraction", [0.01, 0.5])
def test_the_api_takes_a_fraction_at_either_end_of_the_range(alice_api, fraction):
    response = alice_api.post(
        "/api/v1/datasets/",
        {"file": upload("n.jsonl", chat_jsonl(10)), "validation_fraction": fraction},
        format="multipart",
    )
    assert response.status_code == 201
    assert response.json()["validation_fraction"] == fraction


def test_the_settings_form_bounds_the_fraction_input_to_the_range():
    html = str(SettingsForm()["validation_fraction"])
    assert 'min="0.01"' in html and 'max="0.5"' in html
