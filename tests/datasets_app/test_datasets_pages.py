"""Dataset pages: list, upload form, samples, detail report, preview, settings, ownership."""

import pytest

from datasets_app import services
from datasets_app.models import Dataset
from tests.builders import chat_jsonl, upload

pytestmark = pytest.mark.django_db


def ready_dataset(owner, content=None, name="n.jsonl"):
    dataset = services.create_dataset(owner, upload=upload(name, content or chat_jsonl(30)))
    services.run_validation(str(dataset.pk), dataset.revision)
    dataset.refresh_from_db()
    return dataset


def test_the_list_offers_upload_and_samples_with_an_empty_state(alice_client):
    html = alice_client.get("/datasets/").content.decode()
    assert "Drop a file here" in html
    assert "No datasets yet" in html
    assert 'action="/datasets/samples/sentiment/"' in html


def test_an_htmx_upload_redirects_to_the_new_dataset(alice_client, alice):
    response = alice_client.post(
        "/datasets/upload/", {"file": upload("n.jsonl", chat_jsonl(10))}, HTTP_HX_REQUEST="true"
    )
    dataset = Dataset.objects.get(owner=alice)
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/datasets/{dataset.pk}/"


def test_an_htmx_upload_with_a_bad_name_returns_the_form_with_the_reason(alice_client):
    response = alice_client.post(
        "/datasets/upload/", {"file": upload("data.xlsx", b"PK..")}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="upload-form"')
    assert "&#x27;data.xlsx&#x27; has no recognised extension" in html


def test_the_report_of_a_ready_dataset_shows_numbers_charts_and_a_conversation(alice_client, alice):
    dataset = ready_dataset(alice)
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert '<strong data-testid="dataset-format">Chat (messages)</strong>' in html
    assert '<strong data-testid="dataset-rows">30</strong>' in html
    assert '<strong data-testid="dataset-split">27 / 3</strong>' in html
    assert 'id="length-chart" data-chart="histogram"' in html
    assert '<script id="stats-length" type="application/json">' in html
    assert '<div class="bubble bubble-user"><span class="role">user</span>' in html
    assert "ws-connect" not in html  # finished: no live socket


def test_preview_pages_through_the_rows(alice_client, alice):
    dataset = ready_dataset(alice)
    html = alice_client.get(
        f"/datasets/{dataset.pk}/preview/?page=2", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert html.lstrip().startswith('<section id="dataset-preview">')
    assert "Page 2 of 2" in html
    assert "What comes after 20?" in html and "What comes after 19?" not in html


def test_preview_content_is_escaped(alice_client, alice):
    content = (
        b'{"messages": [{"role": "user", "content": "<script>alert(1)</script>"}, {"role": "assistant", "content": "ok"}]}\n'
        * 3
    )
    dataset = ready_dataset(alice, content)
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_report_of_an_invalid_dataset_lists_line_field_and_reason(alice_client, alice):
    dataset = ready_dataset(alice, b'{"prompt": "a", "completion": 5}\n', name="bad.jsonl")
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "1 problem found — nothing was imported." in html
    assert "<td>1</td><td><code>completion</code></td>" in html


def test_a_dataset_in_validation_opens_a_live_socket(alice_client, alice):
    dataset = services.create_dataset(alice, upload=upload("n.jsonl", chat_jsonl(5)))
    html = alice_client.get(f"/datasets/{dataset.pk}/").content.decode()
    assert f'ws-connect="/ws/datasets/{dataset.pk}/"' in html


def test_renaming_and_changing_settings_from_the_page(alice_client, alice):
    dataset = ready_dataset(alice)
    alice_client.post(f"/datasets/{dataset.pk}/rename/", {"name": "Counting"})
    response = alice_client.post(
        f"/datasets/{dataset.pk}/settings/",
        {
            "format": "chat",
            "split_mode": "holdout",
            "validation_fraction": "0.2",
            "split_seed": "7",
        },
    )
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert dataset.name == "Counting"
    assert (dataset.requested_format, dataset.validation_fraction, dataset.split_seed) == (
        "chat",
        0.2,
        7,
    )
    assert dataset.status == "uploaded" and dataset.revision == 2


def test_starting_from_a_sample_creates_a_dataset_with_its_held_out_file(alice_client, alice):
    response = alice_client.post("/datasets/samples/sentiment/")
    dataset = Dataset.objects.get(owner=alice)
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    assert dataset.split_mode == "file" and dataset.validation_filename


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        pytest.param("get", "", id="detail"),
        pytest.param("get", "preview/", id="preview"),
        pytest.param("post", "rename/", id="rename"),
        pytest.param("post", "settings/", id="settings"),
        pytest.param("post", "delete/", id="delete"),
    ],
)
def test_bob_gets_404_for_every_page_of_alices_dataset(bob_client, alice, method, suffix):
    dataset = ready_dataset(alice, name="alices-private-numbers.jsonl")
    response = getattr(bob_client, method)(f"/datasets/{dataset.pk}/{suffix}", {"name": "x"})
    assert response.status_code == 404


def test_bob_does_not_see_alices_dataset_in_his_list(bob_client, alice):
    dataset = ready_dataset(alice, name="alices-private-numbers.jsonl")
    assert dataset.name not in bob_client.get("/datasets/").content.decode()


def test_operators_see_every_users_datasets(client, olga, alice):
    dataset = ready_dataset(alice)
    client.force_login(olga)
    assert client.get(f"/datasets/{dataset.pk}/").status_code == 200
    assert "alice" in client.get("/datasets/").content.decode()
