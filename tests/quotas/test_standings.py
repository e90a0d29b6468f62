"""Where a queued job stands (quotas/services/standings.py): read from the
line last published, one Redis read for a whole page, and from the line
itself when a held job is not in the published one yet or Redis cannot
answer. Real database and Redis."""

import pytest
import redis
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from jobs.services.lifecycle import cancel_job, start_job
from quotas.models import QuotaOverride
from quotas.services import Standings, places, release
from studio.redis_server import free_port
from tests.builders import make_job, ready_sample

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


@pytest.fixture(autouse=True)
def nothing_left_to_train(no_training_worker):
    yield
    for job in FineTuneJob.objects.filter(status__in=(JobStatus.CREATED, JobStatus.QUEUED)):
        cancel_job(job)


def held_behind_a_running_job(user, count: int) -> list[FineTuneJob]:
    """One of the user's jobs runs (their limit is one); `count` wait, held."""
    QuotaOverride.objects.create(user=user, running_jobs=1, note="one at a time")
    dataset = ready_sample(user)
    jobs = []
    for number in range(count + 1):
        job = make_job(user, dataset, name=f"Job {number}")
        start_job(job)  # outside a transaction: its release runs at once
        jobs.append(job)
    ledger.claim(jobs[0].pk, "train@tests")
    release()
    return [FineTuneJob.objects.get(pk=job.pk) for job in jobs[1:]]


def positions(user, jobs) -> list[int | None]:
    standings = Standings(user, jobs)
    return [standings.of(job).position for job in jobs]


def test_a_page_of_places_costs_no_query_however_long_the_line(alice):
    held = held_behind_a_running_job(alice, 12)
    with CaptureQueriesContext(connection) as queries:
        assert positions(alice, held) == list(range(1, 13))
    assert len(queries) == 0  # one HMGET of the published line


def test_a_job_queued_after_the_last_publication_is_placed_from_the_line(alice):
    held = held_behind_a_running_job(alice, 2)
    newest = held[-1]
    client = places._client()
    client.hdel(places.STORE_KEY, str(newest.pk))  # as if its release had not published yet
    assert positions(alice, held) == [1, 2]


def test_with_redis_unable_to_answer_the_places_come_from_the_line(alice, monkeypatch):
    held = held_behind_a_running_job(alice, 3)

    nobody = redis.Redis(port=free_port(), socket_connect_timeout=1)  # a port nothing listens on
    with monkeypatch.context() as patch:  # Redis answers again for the clean-up
        patch.setattr(places, "_client", lambda: nobody)
        assert positions(alice, held) == [1, 2, 3]


def test_a_job_sent_to_a_worker_since_the_publication_reads_released(alice):
    first, second = held_behind_a_running_job(alice, 2)
    FineTuneJob.objects.filter(pk=first.pk).update(dispatched_at=second.queued_at)
    first.refresh_from_db()
    standing = Standings(alice, [first, second]).of(first)
    assert standing.released and standing.position is None
    # It holds a slot now, beside the running job.
    assert standing.running_jobs == 2 and standing.running_limit == 1
