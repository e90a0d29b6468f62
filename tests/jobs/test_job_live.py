"""A job's page and the jobs list over websockets: replay, live points, owner-only,
and convergence on the database whatever messages were lost (fault test 16)."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from jobs.models import FineTuneJob, JobEvent, JobStatus, MetricPoint
from jobs.services import ledger, lifecycle, live
from studio.events import drain, publish
from tests.builders import make_job, ready_sample
from tests.live import run_in_own_loop, socket_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),  # tailor-tiny must exist for make_job
]


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
        assert replay["points"][0]["attempt"] == 1
        assert replay["reset"] is False
        assert replay["stored"] == {"count": 4, "last_step": 3}
        assert replay["summary"] == await sync_to_async(live.page_summary)(job)
        assert replay["summary"]["status_label"] == "Created"
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
        if message.get("event", {}).get("message", "").startswith("Created from"):
            # The creation event is published after the job's commit, from
            # another thread; it may reach a socket opened just after it.
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


# --- converging on the database (fault test 16) ------------------------------------------


class Page:
    """The points a job page holds, by static/js/job_live.js's rules: kept by
    (kind, step); a rewind drops the points past its step of the attempts up
    to its `attempt` (of every attempt when it names none); a full replay
    (`reset`) replaces the points through `stored.last_step`."""

    def __init__(self):
        self.points: dict[tuple[str, int], dict] = {}
        self.summary: dict | None = None

    def cursor(self) -> dict:
        return {
            "after_step": max((step for _, step in self.points), default=-1),
            "attempt": max((p["attempt"] for p in self.points.values()), default=0),
        }

    def take(self, message: dict) -> None:
        kind = message["type"]
        if kind == "rewind":
            newest = message.get("attempt")
            self.points = {
                key: p
                for key, p in self.points.items()
                if p["step"] <= message["after_step"] or (newest and p["attempt"] > newest)
            }
        elif kind == "points":
            if message["reset"]:
                last = message["stored"]["last_step"]
                self.points = {k: p for k, p in self.points.items() if p["step"] > last}
            for p in message["points"]:
                self.points[(p["kind"], p["step"])] = p
            self.summary = message["summary"]
        elif kind == "point":
            p = message["point"]
            self.points[(p["kind"], p["step"])] = p
        elif kind == "summary":
            self.summary = message["job"]

    def agrees_with(self, stored: dict) -> bool:
        """Whether the answer's count of stored points is what the page holds."""
        held = [p for p in self.points.values() if p["step"] <= stored["last_step"]]
        return len(held) == stored["count"]

    def held(self) -> dict:
        return {
            key: (p["attempt"], p["train_loss"], p["val_loss"]) for key, p in self.points.items()
        }


def in_database(job) -> dict:
    return {
        (p.kind, p.step): (p.attempt, p.train_loss, p.val_loss)
        for p in MetricPoint.objects.filter(job=job)
    }


async def ask(socket, page: Page, cursor: dict | None = None) -> list[dict]:
    """Send the page's cursor; take every message up to the points answer."""
    await socket.send_json_to(page.cursor() if cursor is None else cursor)
    seen = []
    while not seen or seen[-1]["type"] != "points":
        seen.append(await socket.receive_json_from(timeout=5))
        page.take(seen[-1])
    return seen


def metric(step: int, loss: float) -> dict:
    """A logging step as the trainer reports it to the ledger."""
    return {"step": step, "epoch": step / 75, "train_loss": loss, "val_loss": None,
            "tokens_per_second": 900.0, "tokens": step * 500, "elapsed": step * 0.8,
            "eta": 10.0, "total_steps": 75}  # fmt: skip


def queued_job(owner):
    job = alices_job(owner)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return job


def first_attempt_logs_ten_steps(job) -> None:
    run = ledger.claim(job.pk, "train@first")
    ledger.record_start(job.pk, run.attempt, total_steps=75, resumed_from_step=0)
    for step in range(1, 11):
        ledger.record_metric(job.pk, run.attempt, metric(step, 5.0 - step / 10))
    drain()


def second_attempt_resumes_from_step_4(job) -> None:
    """The first worker died; the reaper's new attempt resumes from the
    checkpoint of step 4: record_start deletes attempt 1's steps 5-10 and
    sends a rewind, which a page that is away never sees."""
    FineTuneJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    run = ledger.claim(job.pk, "train@second")
    assert run.attempt == 2
    ledger.record_start(job.pk, run.attempt, total_steps=75, resumed_from_step=4)
    for step in range(5, 9):
        ledger.record_metric(job.pk, run.attempt, metric(step, 3.0 - step / 10))
    drain()  # what this attempt published reaches no socket opened after it


def test_a_page_that_missed_a_resumes_rewind_ends_up_with_the_stored_points(alice):
    async def scenario():
        job = await sync_to_async(queued_job)(alice)
        await sync_to_async(first_attempt_logs_ten_steps)(job)
        page = Page()
        socket = socket_for(alice, f"/ws/jobs/{job.pk}/")
        assert (await socket.connect(timeout=10))[0]
        await ask(socket, page)
        assert page.held() == await sync_to_async(in_database)(job)
        assert page.cursor() == {"after_step": 10, "attempt": 1}
        await socket.disconnect()

        await sync_to_async(second_attempt_resumes_from_step_4)(job)

        socket = socket_for(alice, f"/ws/jobs/{job.pk}/")
        assert (await socket.connect(timeout=10))[0]
        seen = await ask(socket, page, {"after_step": 10, "attempt": 1})
        assert {"type": "rewind", "after_step": 4, "attempt": 1} in seen
        answer = seen[-1]
        assert answer["after_step"] == 4
        assert [(p["attempt"], p["step"]) for p in answer["points"]] == [
            (2, 5), (2, 6), (2, 7), (2, 8),
        ]  # fmt: skip
        stored = await sync_to_async(in_database)(job)
        assert page.held() == stored
        assert sorted((attempt, step) for (_, step), (attempt, *_) in stored.items()) == [
            (1, 1), (1, 2), (1, 3), (1, 4), (2, 5), (2, 6), (2, 7), (2, 8),
        ]  # fmt: skip
        assert page.agrees_with(answer["stored"])

        # Its cursor is now the second attempt's: no rewind again, nothing new.
        seen = await ask(socket, page)
        assert [m["type"] for m in seen] == ["points"]
        assert seen[-1]["points"] == [] and page.held() == stored
        await socket.disconnect()

    run_in_own_loop(scenario)


def test_an_old_cursor_without_an_attempt_still_gets_the_points_after_its_step(alice):
    async def scenario():
        job = await sync_to_async(queued_job)(alice)
        await sync_to_async(first_attempt_logs_ten_steps)(job)
        await sync_to_async(second_attempt_resumes_from_step_4)(job)
        socket = socket_for(alice, f"/ws/jobs/{job.pk}/")
        assert (await socket.connect(timeout=10))[0]
        seen = await ask(socket, Page(), {"after_step": 6})
        assert [m["type"] for m in seen if m["type"] != "point"] == ["points"]
        assert [p["step"] for p in seen[-1]["points"]] == [7, 8]
        await socket.disconnect()

    run_in_own_loop(scenario)


def test_a_lost_point_shows_in_the_count_and_a_full_replay_restores_it(alice):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        await sync_to_async(FineTuneJob.objects.filter(pk=job.pk).update)(attempt=1)
        for step in (1, 2, 3):
            await sync_to_async(store_point)(job, step, 5.0 - step)
        await sync_to_async(store_point)(job, 3, 1.5, "eval")
        page = Page()
        for step in (1, 2, 3):  # the evaluation at step 3 never reached the page
            page.take({"type": "point", "point": {"attempt": 1, "step": step, "kind": "train",
                                                  "train_loss": 5.0 - step, "val_loss": None}})  # fmt: skip
        socket = socket_for(alice, f"/ws/jobs/{job.pk}/")
        assert (await socket.connect(timeout=10))[0]
        answer = (await ask(socket, page))[-1]
        assert answer["points"] == [] and answer["stored"] == {"count": 4, "last_step": 3}
        assert not page.agrees_with(answer["stored"])

        # The page then asks from the start (static/js/job_live.js: ask(-1, 0)).
        answer = (await ask(socket, page, {"after_step": -1, "attempt": 0}))[-1]
        assert answer["reset"] is True
        assert page.held() == await sync_to_async(in_database)(job)
        assert page.agrees_with(answer["stored"])
        await socket.disconnect()

    run_in_own_loop(scenario)


def test_a_page_that_missed_the_final_summary_reads_it_in_its_next_answer(alice):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        running = {"status": JobStatus.RUNNING, "attempt": 1, "current_step": 40}
        await sync_to_async(FineTuneJob.objects.filter(pk=job.pk).update)(**running)
        page = Page()
        socket = socket_for(alice, f"/ws/jobs/{job.pk}/")
        assert (await socket.connect(timeout=10))[0]
        await ask(socket, page)
        assert page.summary["status_label"] == "Running"

        # The job succeeds and its summary is never sent (a Redis blip, say).
        done = {"status": JobStatus.SUCCEEDED, "current_step": 75, "train_loss": 0.42,
                "best_val_loss": 0.5, "tokens_per_second": 812.5}  # fmt: skip
        await sync_to_async(FineTuneJob.objects.filter(pk=job.pk).update)(**done)
        await ask(socket, page)  # the page's periodic resync
        assert page.summary["status"] == "succeeded"
        assert page.summary["status_label"] == "Succeeded"
        assert (page.summary["current_step"], page.summary["progress_percent"]) == (75, 100)
        assert (page.summary["train_loss"], page.summary["best_val_loss"]) == (0.42, 0.5)
        assert page.summary["tokens_per_second"] == 812.5
        await socket.disconnect()

    run_in_own_loop(scenario)


def test_a_cursor_that_is_not_whole_numbers_is_answered_with_how_to_ask(alice):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        socket = socket_for(alice, f"/ws/jobs/{job.pk}/")
        assert (await socket.connect(timeout=10))[0]
        expected = {"type": "error", "message": 'Send {"after_step": <int>, "attempt": <int>}.'}
        for cursor in ({"after_step": "3"}, {"after_step": -2}, {"after_step": 2**63},
                       {"after_step": 3, "attempt": -1}, {"after_step": 3, "attempt": True},
                       ["after_step", 3]):  # fmt: skip
            await socket.send_json_to(cursor)
            assert await socket.receive_json_from(timeout=5) == expected
        await socket.disconnect()

    run_in_own_loop(scenario)


def test_the_jobs_list_asks_for_its_rows_and_gets_only_jobs_it_may_see(alice, bob):
    async def scenario():
        job = await sync_to_async(alices_job)(alice)
        await sync_to_async(FineTuneJob.objects.filter(pk=job.pk).update)(
            status=JobStatus.SUCCEEDED
        )
        alices = socket_for(alice, "/ws/jobs/")
        bobs = socket_for(bob, "/ws/jobs/")
        assert (await alices.connect(timeout=10))[0] and (await bobs.connect(timeout=10))[0]

        await alices.send_json_to({"jobs": [str(job.pk), "not-a-job"]})
        answer = await alices.receive_json_from(timeout=5)
        assert answer["type"] == "summaries"
        assert [(j["id"], j["status_label"]) for j in answer["jobs"]] == [
            (str(job.pk), "Succeeded")
        ]
        await bobs.send_json_to({"jobs": [str(job.pk)]})
        assert await bobs.receive_json_from(timeout=5) == {"type": "summaries", "jobs": []}
        await bobs.send_json_to({"jobs": "all"})
        assert await bobs.receive_json_from(timeout=5) == {
            "type": "error",
            "message": 'Send {"jobs": [<job id>, …]}, at most 100.',
        }
        await alices.disconnect()
        await bobs.disconnect()

    run_in_own_loop(scenario)
