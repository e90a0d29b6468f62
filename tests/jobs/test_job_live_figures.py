"""The job page's figures after each logged point (jobs/services/live.py):
the attempt's elapsed time, the time left (the worker's estimate, else the
measured rate), and the one message per audience that carries them live."""

import pytest
from asgiref.sync import sync_to_async

from jobs.models import FineTuneJob, JobStatus, MetricPoint
from jobs.services import ledger, lifecycle, live
from tests.builders import make_job, ready_sample
from tests.live import run_in_own_loop, socket_for

pytestmark = pytest.mark.usefixtures("demo_models")  # tailor-tiny must exist for make_job


def running(owner, *, attempt: int = 1, eta: float | None = None, **fields) -> FineTuneJob:
    job = make_job(owner, ready_sample(owner))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempt=attempt, total_steps=100, eta_seconds=eta, **fields
    )
    return FineTuneJob.objects.get(pk=job.pk)


def point(job, attempt: int, step: int, elapsed: float, kind: str = "train") -> MetricPoint:
    return MetricPoint.objects.create(
        job=job, attempt=attempt, step=step, kind=kind, elapsed=elapsed,
        train_loss=1.0 if kind == "train" else None, val_loss=1.0 if kind == "eval" else None,
    )  # fmt: skip


@pytest.mark.django_db
def test_before_its_first_point_an_attempt_has_no_elapsed_time_nor_time_left(alice):
    summary = live.page_summary(running(alice))
    assert summary["elapsed_seconds"] is None
    assert summary["time_left_seconds"] is None


@pytest.mark.django_db
def test_the_workers_estimate_is_the_time_left_and_the_newest_point_the_elapsed_time(alice):
    job = running(alice, eta=42.5, current_step=20)
    point(job, 1, 10, 20.0)
    point(job, 1, 20, 40.0)
    point(job, 1, 20, 43.0, "eval")
    summary = live.page_summary(job)
    assert summary["elapsed_seconds"] == 43.0
    assert summary["time_left_seconds"] == 42.5
    assert summary["progress_percent"] == 20


@pytest.mark.django_db
def test_without_the_workers_estimate_the_first_attempt_is_measured_from_step_0(alice):
    job = running(alice, current_step=25)
    point(job, 1, 25, 50.0)  # 2 s a step, 75 steps left
    assert live.page_summary(job)["time_left_seconds"] == 150.0


@pytest.mark.django_db
def test_a_resumed_attempt_is_measured_from_its_own_first_point(alice):
    job = running(alice, attempt=2, current_step=60)
    point(job, 1, 30, 300.0)  # the first attempt's pace and clock do not count
    point(job, 2, 40, 5.0)
    point(job, 2, 60, 25.0)  # 1 s a step since its first point, 40 steps left
    summary = live.page_summary(job)
    assert summary["elapsed_seconds"] == 25.0
    assert summary["time_left_seconds"] == 40.0
    # With one point only the pace is unknown.
    MetricPoint.objects.filter(job=job, attempt=2, step=60).delete()
    assert live.page_summary(job)["time_left_seconds"] is None


@pytest.mark.django_db
def test_a_finished_job_has_no_time_left_but_keeps_its_elapsed_time(alice):
    job = running(alice, eta=12.0)
    point(job, 1, 100, 200.0)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    summary = live.page_summary(FineTuneJob.objects.get(pk=job.pk))
    assert summary["time_left_seconds"] is None
    assert summary["elapsed_seconds"] == 200.0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_each_logged_point_reaches_the_page_with_its_figures_and_the_list_with_its_summary(
    alice,
):
    def log(job, run, step: int, eta: float | None) -> None:
        ledger.record_metric(job.pk, run.attempt, {
            "step": step, "epoch": step / 75, "train_loss": 4.0 - step / 100, "val_loss": None,
            "tokens_per_second": 1500.0, "tokens": step * 500, "elapsed": step * 2.0,
            "eta": eta, "total_steps": 75,
        })  # fmt: skip

    def claimed():
        job = make_job(alice, ready_sample(alice))
        FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
        run = ledger.claim(job.pk, "train@figures")
        ledger.record_start(job.pk, run.attempt, total_steps=75, resumed_from_step=0)
        return job, run

    def summaries(job):
        job = FineTuneJob.objects.get(pk=job.pk)
        return live.page_summary(job), lifecycle.job_summary(job)

    async def scenario():
        job, run = await sync_to_async(claimed)()
        page = socket_for(alice, f"/ws/jobs/{job.pk}/")
        jobs_list = socket_for(alice, "/ws/jobs/")
        assert (await page.connect(timeout=10))[0] and (await jobs_list.connect(timeout=10))[0]
        for step, eta in ((15, 120.0), (30, None)):
            await sync_to_async(log)(job, run, step, eta)
            message = await page.receive_json_from(timeout=5)
            # Before it: the claim's and start's summaries, and the creation's
            # event (published after the job's commit, from another thread).
            while message["type"] != "point":
                message = await page.receive_json_from(timeout=5)
            on_page, on_list = await sync_to_async(summaries)(job)
            assert message["type"] == "point" and message["point"]["step"] == step
            assert message["summary"] == on_page
            assert on_page["current_step"] == step
            assert on_page["elapsed_seconds"] == step * 2.0
            # The worker's estimate, else 2 s a step for the 45 steps left.
            assert on_page["time_left_seconds"] == (eta if eta is not None else 90.0)
            listed = await jobs_list.receive_json_from(timeout=5)
            while listed["job"]["current_step"] != step:  # the claim's and start's
                listed = await jobs_list.receive_json_from(timeout=5)
            assert listed == {"type": "summary", "job": on_list}
        await page.disconnect()
        await jobs_list.disconnect()

    run_in_own_loop(scenario)
