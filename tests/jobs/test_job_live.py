"""A job's page and the jobs list over websockets: replay, live points, owner-only."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from jobs.models import JobEvent, MetricPoint
from jobs.services import lifecycle, live
from studio.asgi import application
from studio.events import publish
from tests.jobs.helpers import make_job, ready_sample
from tests.live import run_in_own_loop

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def socket_for(user, path: str) -> WebsocketCommunicator:
    # The whole ASGI application, as the browser reaches it (session auth is
    # replaced by the scope's user, as AuthMiddlewareStack would set it).
    communicator = WebsocketCommunicator(application, path)
    communicator.scope["user"] = user
    communicator.scope["headers"] = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
    return communicator


def store_point(job, step: int, loss: float, kind: str = "train") -> MetricPoint:
    """A metric row as the ledger writes it (the worker's attempt 1)."""
    return MetricPoint.objects.create(
        job=job, attempt=1, step=step, kind=kind, epoch=step / 75,
        train_loss=loss if kind == "train" else None,
        val_loss=loss if kind == "eval" else None, tokens=step * 100,
    )  # fmt: skip


def alices_job(alice):
    return make_job(alice, ready_sample(alice))


def test_the_owner_gets_the_stored_points_after_a_step_then_live_ones(alice):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        for step in (1, 2, 3):
            await sync_to_async(store_point)(job, step, 5.0 - step)
        await sync_to_async(store_point)(job, 3, 1.5, "eval")

        socket = socket_for(alice, f"/ws/jobs/{job.pk}/")
        connected, _ = await socket.connect(timeout=10)
        assert connected
        await socket.send_json_to({"after_step": 1})
        replay = await socket.receive_json_from(timeout=5)
        assert replay["type"] == "points"
        assert [(p["step"], p["kind"]) for p in replay["points"]] == [
            (2, "train"), (3, "train"), (3, "eval"),
        ]  # fmt: skip
        assert replay["points"][0]["train_loss"] == 3.0
        assert replay["points"][0]["total_steps"] == 75
        assert replay["summary"] == await sync_to_async(lifecycle.job_summary)(job)
        assert [e["message"] for e in replay["events"]] == ["Created from Support ticket routing."]

        # A point written the way the ledger writes it reaches the page at once.
        point = await sync_to_async(store_point)(job, 4, 0.9)
        await sync_to_async(
            lambda: live.publish_metric(job.pk, live.metric_payload(point, 75)).result(5)
        )()
        message = await socket.receive_json_from(timeout=5)
        assert message["type"] == "point"
        assert message["point"]["step"] == 4 and message["point"]["train_loss"] == 0.9
        await socket.disconnect()

    run_in_own_loop(scenario)


def test_events_summaries_and_rewinds_are_forwarded(alice):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        socket = socket_for(alice, f"/ws/jobs/{job.pk}/")
        assert (await socket.connect(timeout=10))[0]

        event = await sync_to_async(JobEvent.objects.create)(
            job=job, kind="log", message="Tokenised 1,080 rows."
        )
        await sync_to_async(lambda: live.publish_event(event).result(5))()
        message = await socket.receive_json_from(timeout=5)
        assert message["type"] == "event"
        assert message["event"]["message"] == "Tokenised 1,080 rows."

        await sync_to_async(lifecycle.cancel_job)(job)
        seen = [await socket.receive_json_from(timeout=5) for _ in range(2)]
        summary = next(m for m in seen if m["type"] == "summary")
        assert summary["job"]["status"] == "cancelled"
        assert summary["job"]["status_label"] == "Cancelled"

        await sync_to_async(
            lambda: publish(
                live.job_group(job.pk), {"type": "job.rewind", "after_step": 20}
            ).result(5)
        )()
        assert await socket.receive_json_from(timeout=5) == {"type": "rewind", "after_step": 20}
        await socket.disconnect()

    run_in_own_loop(scenario)


def test_bob_cannot_subscribe_to_alices_job(alice, bob):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        connected, _ = await socket_for(bob, f"/ws/jobs/{job.pk}/").connect(timeout=10)
        assert not connected

    run_in_own_loop(scenario)


def test_an_anonymous_visitor_cannot_subscribe(alice):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        connected, _ = await socket_for(AnonymousUser(), f"/ws/jobs/{job.pk}/").connect(timeout=10)
        assert not connected
        connected, _ = await socket_for(AnonymousUser(), "/ws/jobs/").connect(timeout=10)
        assert not connected

    run_in_own_loop(scenario)


def test_the_jobs_list_socket_receives_the_owners_summaries_only(alice, bob):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        alices = socket_for(alice, "/ws/jobs/")
        bobs = socket_for(bob, "/ws/jobs/")
        assert (await alices.connect(timeout=10))[0] and (await bobs.connect(timeout=10))[0]

        await sync_to_async(lambda: live.publish_summary(job.pk))()
        message = await alices.receive_json_from(timeout=5)
        assert message == {
            "type": "summary",
            "job": await sync_to_async(lifecycle.job_summary)(job),
        }
        assert await bobs.receive_nothing(timeout=0.5)
        await alices.disconnect()
        await bobs.disconnect()

    run_in_own_loop(scenario)
