"""The shared lease mechanism, kind by kind, against the real database and
Redis, with no worker: rows are claimed as a worker would, their leases
expired, and the reaper's decision read back."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from datasets_app import services as datasets
from datasets_app.models import Dataset
from jobs.models import FineTuneJob
from serving.models import Evaluation, Generation
from serving.services import generations
from serving.work import WORKER_LOST
from studio.services import leases
from tests.builders import chat_jsonl, make_job, ready_sample, upload

pytestmark = pytest.mark.django_db


def expire(kind, pk) -> None:
    kind.model.objects.filter(pk=pk).update(
        **{kind.columns.lease: timezone.now() - timedelta(seconds=1)}
    )


def lose(kind, pk) -> int:
    """Claim the row as a worker would, lose it, reap; the reaper's count."""
    attempt = kind.model.objects.filter(pk=pk).values_list(kind.columns.attempt, flat=True)[0]
    assert leases.claim(kind, pk, "a worker that dies") == attempt + 1
    expire(kind, pk)
    return leases.reap()[kind.name]


def test_every_kind_of_work_is_registered_once():
    assert sorted(leases.KINDS) == ["evaluation", "export", "generation", "training", "validation"]
    assert {kind.queue for kind in leases.KINDS.values()} == {
        "default", "train", "infer", "evaluate",
    }  # fmt: skip


def test_a_lost_validation_runs_again_by_itself_then_ends_invalid_after_its_attempts(
    alice, settings
):
    settings.TAILOR_JOB_MAX_ATTEMPTS = 2
    dataset = datasets.create_dataset(alice, upload=upload("a.jsonl", chat_jsonl(5)))
    kind = leases.kind("validation")
    assert lose(kind, dataset.pk) == 1
    dataset.refresh_from_db()
    assert (dataset.status, dataset.attempt, dataset.dispatched_at) == ("uploaded", 1, None)
    assert lose(kind, dataset.pk) == 1
    dataset.refresh_from_db()
    assert (dataset.status, dataset.errors[0]["code"]) == ("invalid", "worker_lost")
    assert dataset.errors[0]["message"] == (
        "Validation's worker was lost on every attempt (2), so Tailor gave up. A file this "
        "large may need more memory on the worker; tell an operator, then validate again."
    )


def test_new_settings_give_a_dataset_fresh_validation_attempts(alice, settings):
    settings.TAILOR_JOB_MAX_ATTEMPTS = 1
    dataset = datasets.create_dataset(alice, upload=upload("a.jsonl", chat_jsonl(5)))
    kind = leases.kind("validation")
    leases.claim(kind, dataset.pk, "w")
    datasets.change_settings(Dataset.objects.get(pk=dataset.pk), requested_format="chat")
    changed = Dataset.objects.get(pk=dataset.pk)
    assert (changed.attempt, changed.attempt_base, changed.max_attempts) == (1, 1, 2)
    assert datasets.run_validation(str(dataset.pk), changed.revision) == "ready"


def test_a_lost_evaluation_is_queued_again_then_failed_and_never_blocks_a_new_one(
    alice, demo_models, settings
):
    settings.TAILOR_JOB_MAX_ATTEMPTS = 2
    job = make_job(alice, ready_sample(alice))
    evaluation = Evaluation.objects.create(job=job, trigger="manual", sample_size=5)
    kind = leases.kind("evaluation")
    leases.claim(kind, evaluation.pk, "w")
    Evaluation.objects.filter(pk=evaluation.pk).update(done=3)
    expire(kind, evaluation.pk)
    assert leases.reap()["evaluation"] == 1
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.done, evaluation.attempt) == ("queued", 0, 1)
    assert lose(kind, evaluation.pk) == 1
    evaluation.refresh_from_db()
    assert evaluation.status == "failed"
    assert evaluation.error.startswith(
        "The evaluation's worker was lost on every attempt (2), so Tailor gave up."
    )


def test_a_lost_export_loses_its_files_and_is_queued_again(
    alice, demo_models, django_capture_on_commit_callbacks
):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(status="succeeded", export_status="queued")
    kind = leases.kind("export")
    assert leases.claim(kind, job.pk, "w") == 1
    half_written = job.export_folder(1) / ".merged-abc" / "model.safetensors"
    half_written.parent.mkdir(parents=True)
    half_written.write_bytes(b"half")
    expire(kind, job.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert leases.reap()["export"] == 1
    job.refresh_from_db()
    # Queued again, and sent (the next claim is attempt 2).
    assert (job.export_status, job.export_attempt, job.export_lease_expires_at) == (
        "queued", 1, None,
    )  # fmt: skip
    assert job.export_task_id
    assert not job.export_folder(1).exists()
    assert job.events.last().message == "The export's worker was lost; queued again."


def test_a_lost_generation_fails_at_once_and_an_untaken_one_after_the_start_timeout(
    alice, settings
):
    settings.TAILOR_GENERATION_START_TIMEOUT_SECONDS = 5
    checked = generations.check_request(alice, generations.GenerationRequest(
        models=["tailor-tiny"], messages=[{"role": "user", "content": "Hi"}]))  # fmt: skip
    running = generations.create_generation(alice, checked, source="api")
    kind = leases.kind("generation")
    assert leases.claim(kind, running.pk, "w") == 1
    expire(kind, running.pk)
    untaken = generations.create_generation(alice, checked, source="api")
    Generation.objects.filter(pk=untaken.pk).update(
        dispatched_at=timezone.now() - timedelta(seconds=11)
    )
    assert leases.reap()["generation"] == 2
    lost, never_taken = (Generation.objects.get(pk=g.pk) for g in (running, untaken))
    assert (lost.status, lost.error) == ("failed", WORKER_LOST)
    assert (never_taken.status, never_taken.error) == ("failed", generations.no_worker_message())


def test_a_run_that_lost_its_row_cannot_renew_or_write(alice, demo_models):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(status="queued")
    kind = leases.kind("training")
    first = leases.claim(kind, job.pk, "a")
    expire(kind, job.pk)
    second = leases.claim(kind, job.pk, "b")
    assert (first, second) == (1, 2)
    assert leases.renew(kind, job.pk, first) is None
    assert not leases.owned(kind, job.pk, first).update(current_step=99)
    assert leases.renew(kind, job.pk, second) == "running"


def test_the_lease_is_the_databases_now_plus_the_lease_time(alice, demo_models, settings):
    from django.db import connection

    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(status="queued")
    leases.claim(leases.kind("training"), job.pk, "a")
    lease = FineTuneJob.objects.get(pk=job.pk).lease_expires_at
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CURRENT_TIMESTAMP" if connection.vendor == "postgresql" else
            "SELECT STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')"
        )  # fmt: skip
        now = cursor.fetchone()[0]
    if isinstance(now, str):
        now = datetime.fromisoformat(now).replace(tzinfo=UTC)
    expected = now + timedelta(seconds=settings.TAILOR_JOB_LEASE_SECONDS)
    assert abs((lease - expected).total_seconds()) < 2
