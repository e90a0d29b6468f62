"""Live validation progress over the websocket, owner-only; the ASGI size guard."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.test import override_settings

from datasets_app import services
from datasets_app.models import Dataset
from datasets_app.routing import websocket_urlpatterns
from studio.asgi import application
from studio.events import publish
from studio.services.tokens import create_token
from tests.live import run_in_own_loop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def validating_dataset(owner) -> Dataset:
    # Made directly, not through create_dataset: no worker must race the
    # events this test publishes itself.
    return Dataset.objects.create(
        owner=owner, name="n", original_filename="n.jsonl", size_bytes=100, status="validating"
    )


def socket_for(user, dataset_id):
    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/datasets/{dataset_id}/"
    )
    communicator.scope["user"] = user
    return communicator


def test_the_owner_sees_progress_then_the_report_is_fetched(alice):
    async def scenario():
        dataset = await sync_to_async(validating_dataset)(alice)
        socket = socket_for(alice, dataset.pk)
        connected, _ = await socket.connect()
        assert connected
        first = await socket.receive_from(timeout=5)
        assert 'id="dataset-progress"' in first and "0</strong> rows checked" in first

        await sync_to_async(
            lambda: publish(
                services.group_name(dataset.pk),
                {"type": "dataset.progress", "phase": "file", "rows": 1234, "percent": 40},
            ).result(5)
        )()
        progress = await socket.receive_from(timeout=5)
        assert '<progress value="40" max="100"' in progress
        assert '<strong data-testid="rows-checked">1234</strong> rows checked' in progress

        await sync_to_async(
            lambda: publish(
                services.group_name(dataset.pk), {"type": "dataset.finished", "status": "ready"}
            ).result(5)
        )()
        finished = await socket.receive_from(timeout=5)
        assert f'hx-get="/datasets/{dataset.pk}/"' in finished
        await socket.disconnect()

    run_in_own_loop(scenario)


def test_bob_cannot_subscribe_to_alices_dataset(alice, bob):
    async def scenario():
        dataset = await sync_to_async(validating_dataset)(alice)
        socket = socket_for(bob, dataset.pk)
        connected, _ = await socket.connect()
        assert not connected

    run_in_own_loop(scenario)


def test_an_anonymous_visitor_cannot_subscribe(alice):
    async def scenario():
        from django.contrib.auth.models import AnonymousUser

        dataset = await sync_to_async(validating_dataset)(alice)
        connected, _ = await socket_for(AnonymousUser(), dataset.pk).connect()
        assert not connected

    run_in_own_loop(scenario)


@override_settings(DATASET_MAX_UPLOAD_BYTES=1000)
def test_the_server_refuses_a_declared_oversized_body_before_reading_it(alice):
    # Signed in, as only a signed-in caller gets the upload limit (else a few MiB).
    secret = create_token(alice, "tests").secret
    headers = [
        (b"content-length", str(5 * 1024 * 1024).encode()),
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {secret}".encode()),
    ]

    async def scenario():
        communicator = HttpCommunicator(
            application, "POST", "/api/v1/datasets/", body=b"x" * 10, headers=headers
        )
        response = await communicator.get_response(timeout=5)
        assert response["status"] == 413
        assert response["body"] == (
            b'{"error": {"code": "file_too_large", "message": '
            b'"The file is larger than the upload limit of 1000 bytes.", "field": "file"}}'
        )
        # The OpenAI-compatible upload answers in OpenAI's shape.
        communicator = HttpCommunicator(
            application, "POST", "/v1/files", body=b"x" * 10, headers=headers
        )
        response = await communicator.get_response(timeout=5)
        assert response["status"] == 413
        assert json.loads(response["body"]) == {
            "error": {
                "message": "The file is larger than the upload limit of 1000 bytes.",
                "type": "invalid_request_error",
                "param": "file",
                "code": "file_too_large",
            }
        }

    run_in_own_loop(scenario)
