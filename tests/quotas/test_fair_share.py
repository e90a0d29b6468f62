"""Fair share and release (quotas/services/fair_share.py): held jobs have no
message, the line is chosen across users, a slot freed releases the next.
Real database and Redis (the broker); the ledger is called as a worker would."""

import pytest
from django.utils import timezone

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from jobs.services.lifecycle import cancel_job, start_job
from quotas.models import QuotaOverride
from quotas.services import release, standing, waiting_line
from studio.services import leases
from tests.builders import make_job, ready_sample

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/jobs/"


@pytest.fixture
def started(django_capture_on_commit_callbacks):
    """Start a created job as the web does, its after-commit work run."""

    def start(job):
        with django_capture_on_commit_callbacks(execute=True):
            start_job(job)
        return FineTuneJob.objects.get(pk=job.pk)

    return start


def held(job) -> bool:
    job = FineTuneJob.objects.get(pk=job.pk)
    return job.status == JobStatus.QUEUED and job.dispatched_at is None and not job.task_id


def messages(line) -> list[str]:
    return [place.message() for place in line]


def finish(job, django_capture_on_commit_callbacks):
    """The run's final write, as the worker makes it."""
    job = FineTuneJob.objects.get(pk=job.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ledger.finish_succeeded(job.pk, job.attempt, metrics={}, adapter_path="", adapter_bytes=0,
                                trained_tokens=0, final_step=1)  # fmt: skip


def test_with_the_defaults_a_started_job_is_sent_at_once(alice, demo_models, started):
    job = started(make_job(alice, ready_sample(alice)))
    assert (job.status, bool(job.task_id), job.dispatched_at is not None) == ("queued", True, True)
    assert standing(job).as_dict() == {
        "position": None, "released": True,
        "reason": "sent to a training worker; it starts when the worker takes it",
        "message": "Next: sent to a training worker; it starts when the worker takes it",
        "running_jobs": 1, "running_limit": None,
    }  # fmt: skip


def test_a_job_waits_held_while_every_slot_is_busy_and_goes_when_one_frees(
    alice, demo_models, started, django_capture_on_commit_callbacks
):
    dataset = ready_sample(alice)
    first = started(make_job(alice, dataset))
    ledger.claim(first.pk, "train@a")
    second = started(make_job(alice, dataset))
    assert held(second)
    assert messages(waiting_line()) == ["1st in line; every training worker is busy (1 of 1)"]
    finish(first, django_capture_on_commit_callbacks)
    assert not held(second)
    assert FineTuneJob.objects.get(pk=second.pk).task_id


def test_over_the_running_limit_jobs_wait_and_say_where_they_stand(
    alice, demo_models, started, settings
):
    settings.TAILOR_TRAINING_SLOTS = 0  # workers to spare: only the limit holds them
    QuotaOverride.objects.create(user=alice, running_jobs=1)
    dataset = ready_sample(alice)
    jobs = [started(make_job(alice, dataset)) for _ in range(3)]
    assert [held(job) for job in jobs] == [False, True, True]
    ledger.claim(jobs[0].pk, "train@a")
    assert messages(waiting_line()) == [
        "1st in line; you have 1 running job, your limit",
        "2nd in line; you have 1 running job, your limit",
    ]


def test_the_next_job_is_chosen_across_users_not_by_arrival(
    alice, bob, django_user_model, demo_models, started, django_capture_on_commit_callbacks
):
    carol = django_user_model.objects.create_user("carol", "carol@example.com", "pw")
    carols = started(make_job(carol, ready_sample(carol)))
    ledger.claim(carols.pk, "train@a")  # the only slot
    mine = ready_sample(alice)
    alice_jobs = [started(make_job(alice, mine)) for _ in range(3)]
    bob_job = started(make_job(bob, ready_sample(bob)))  # the last to arrive
    line = waiting_line()
    # Alice's second job counts as if her first ran: bob's one goes before
    # it, however many she queued.
    assert [p.job_id for p in line] == [
        str(alice_jobs[0].pk), str(bob_job.pk), str(alice_jobs[1].pk), str(alice_jobs[2].pk),
    ]  # fmt: skip
    assert messages(line)[1] == "2nd in line; every training worker is busy (1 of 1)"
    # The slot frees: the 1st in line goes, then the 2nd.
    finish(carols, django_capture_on_commit_callbacks)
    assert not held(alice_jobs[0]) and held(bob_job)
    ledger.claim(alice_jobs[0].pk, "train@a")
    finish(alice_jobs[0], django_capture_on_commit_callbacks)
    assert not held(bob_job)
    assert all(held(job) for job in alice_jobs[1:])


def test_the_user_who_was_first_in_line_goes_when_another_users_job_ends(
    alice, bob, demo_models, started, django_capture_on_commit_callbacks
):
    # Alice runs one job and queues two; bob queues one after them. Bob is
    # 1st in line, and stays first when her job ends (she had the last turn).
    mine = ready_sample(alice)
    running = started(make_job(alice, mine))
    ledger.claim(running.pk, "train@a")
    alice_waiting = [started(make_job(alice, mine)) for _ in range(2)]
    bob_job = started(make_job(bob, ready_sample(bob)))
    assert waiting_line()[0].job_id == str(bob_job.pk)
    finish(running, django_capture_on_commit_callbacks)
    assert not held(bob_job)
    assert all(held(job) for job in alice_waiting)


def test_a_user_at_their_limit_lets_another_users_job_take_the_free_slot(
    alice, bob, demo_models, started, settings
):
    settings.TAILOR_TRAINING_SLOTS = 2
    QuotaOverride.objects.create(user=alice, running_jobs=1)
    a1 = started(make_job(alice, ready_sample(alice)))
    ledger.claim(a1.pk, "train@a")
    a2 = started(make_job(alice, ready_sample(alice)))
    b1 = started(make_job(bob, ready_sample(bob)))
    assert held(a2) and not held(b1)


def test_dispatch_never_sends_a_held_job_and_releases_it_when_a_slot_frees(
    alice, demo_models, started
):
    dataset = ready_sample(alice)
    first = started(make_job(alice, dataset))
    ledger.claim(first.pk, "train@a")
    second = started(make_job(alice, dataset))
    assert leases.dispatch().get("training", 0) == 0
    assert held(second)
    # The run ended without a release (a worker that died after its write):
    # the next maintenance round releases.
    FineTuneJob.objects.filter(pk=first.pk).update(
        status=JobStatus.SUCCEEDED, finished_at=timezone.now()
    )
    assert leases.dispatch().get("training", 0) == 1
    assert not held(second)


def test_a_released_job_cancelled_before_a_worker_took_it_frees_its_slot(
    alice, demo_models, started, django_capture_on_commit_callbacks
):
    dataset = ready_sample(alice)
    first = started(make_job(alice, dataset))  # released, not yet taken
    second = started(make_job(alice, dataset))
    assert held(second)
    with django_capture_on_commit_callbacks(execute=True):
        cancel_job(first)
    assert not held(second)


def test_release_sends_nothing_more_when_called_again(alice, demo_models, started):
    dataset = ready_sample(alice)
    started(make_job(alice, dataset))
    second = started(make_job(alice, dataset))
    assert release() == 0
    assert held(second)


def test_the_api_shows_a_queued_jobs_place_and_bob_cannot_see_it(
    alice, demo_models, started, alice_api, bob_api
):
    QuotaOverride.objects.create(user=alice, running_jobs=1)
    dataset = ready_sample(alice)
    first = started(make_job(alice, dataset))
    ledger.claim(first.pk, "train@a")
    waiting = started(make_job(alice, dataset))
    body = alice_api.get(f"{JOBS}{waiting.pk}/").json()
    assert body["queue"] == {
        "position": 1, "released": False, "reason": "you have 1 running job, your limit",
        "message": "1st in line; you have 1 running job, your limit", "running_jobs": 1,
        "running_limit": 1,
    }  # fmt: skip
    listed = {job["id"]: job["queue"] for job in alice_api.get(JOBS).json()["results"]}
    assert listed == {str(waiting.pk): body["queue"], str(first.pk): None}
    assert bob_api.get(f"{JOBS}{waiting.pk}/").status_code == 404


def test_the_head_of_the_line_read_alone_is_the_head_of_the_whole_line(
    alice, bob, django_user_model, demo_models, started
):
    # /ops/ reads only the places it shows: each owner's oldest jobs, no more.
    carol = django_user_model.objects.create_user("carol", "carol@example.com", "pw")
    carols = started(make_job(carol, ready_sample(carol)))
    ledger.claim(carols.pk, "train@a")  # the only slot
    QuotaOverride.objects.create(user=alice, running_jobs=2)
    mine, theirs = ready_sample(alice), ready_sample(bob)
    for _ in range(4):
        started(make_job(alice, mine))
    for _ in range(2):
        started(make_job(bob, theirs))
    started(make_job(carol, ready_sample(carol)))
    whole = waiting_line()
    # Alice's last two are over her limit of two: they come after everyone's.
    a, b, c = alice.pk, bob.pk, carol.pk
    assert [place.owner_id for place in whole] == [a, b, c, a, b, a, a]
    for head in (1, 3, 5, 7, 20):
        assert waiting_line(head) == whole[:head]
