"""Places in the training line, live (quotas/services/places.py): the line is
read once per change and what moved reaches the owner's sockets (worded for
them) and the operators' (with the owner's name), never another user's; a
socket's resync is answered from the last line published. Real database,
Redis and channel layer; the ledger is called as a worker would."""

import pytest
from asgiref.sync import sync_to_async

from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger
from jobs.services.lifecycle import cancel_job, start_job
from quotas.models import QuotaOverride
from quotas.services import places, release, waiting_line
from tests.builders import make_job, ready_sample
from tests.live import run_in_own_loop, socket_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

AT_LIMIT = "you have 1 running job, your limit"
ALICE_AT_LIMIT = "alice has 1 running job, alice's limit"
RELEASED = "sent to a training worker; it starts when the worker takes it"


@pytest.fixture(autouse=True)
def nothing_left_to_train(no_training_worker):
    """No training worker takes a message during the test; none finds a job to
    train once they come back."""
    yield
    for job in FineTuneJob.objects.filter(status__in=(JobStatus.CREATED, JobStatus.QUEUED)):
        cancel_job(job)


def alice_at_her_limit_with_three_held(alice) -> tuple[FineTuneJob, list[FineTuneJob]]:
    """Alice may run one job at a time: one runs (a worker claimed it) and
    three wait, held, in the order she queued them."""
    QuotaOverride.objects.create(user=alice, running_jobs=1, note="one at a time")
    dataset = ready_sample(alice)
    jobs = []
    for name in ("Running", "First", "Second", "Third"):
        job = make_job(alice, dataset, name=name)
        start_job(job)  # outside a transaction: its release runs at once
        jobs.append(FineTuneJob.objects.get(pk=job.pk))
    ledger.claim(jobs[0].pk, "train@tests")
    release()  # the line as it stands now, published
    return jobs[0], jobs[1:]


def ids(jobs) -> list[str]:
    return [str(job.pk) for job in jobs]


def messages(shown) -> dict[str, str]:
    return {place["id"]: place["message"] for place in shown}


async def next_places(socket) -> dict:
    """The next places message (summaries of the same change may come first)."""
    while True:
        message = await socket.receive_json_from(timeout=5)
        if message["type"] == "places":
            return message


def test_the_line_is_stored_as_published_and_sent_again_only_when_it_moves(alice):
    _, (first, second, third) = alice_at_her_limit_with_three_held(alice)
    version, shown = places.stored(ids([first, second, third]), alice.pk)
    assert version > 0
    assert shown == [
        {"id": str(first.pk), "position": 1, "message": f"1st in line; {AT_LIMIT}",
         "sentence": f"Queued: 1st in line; {AT_LIMIT}."},
        {"id": str(second.pk), "position": 2, "message": f"2nd in line; {AT_LIMIT}",
         "sentence": f"Queued: 2nd in line; {AT_LIMIT}."},
        {"id": str(third.pk), "position": 3, "message": f"3rd in line; {AT_LIMIT}",
         "sentence": f"Queued: 3rd in line; {AT_LIMIT}."},
    ]  # fmt: skip
    assert places.publish(waiting_line()) == 0  # nothing moved: nothing sent

    cancel_job(first)
    moved, shown = places.stored(ids([second, third]), alice.pk)
    assert moved > version
    assert messages(shown) == {
        str(second.pk): f"1st in line; {AT_LIMIT}",
        str(third.pk): f"2nd in line; {AT_LIMIT}",
    }


def test_a_move_reaches_the_owners_list_and_job_page_and_the_operators_not_bob(alice, bob, olga):
    async def scenario():
        _, (first, second, third) = await sync_to_async(alice_at_her_limit_with_three_held)(alice)
        alices, bobs, olgas = (socket_for(user, "/ws/jobs/") for user in (alice, bob, olga))
        thirds_page = socket_for(alice, f"/ws/jobs/{third.pk}/")
        for socket in (alices, bobs, olgas, thirds_page):
            assert (await socket.connect(timeout=10))[0]

        # Each list asks for its rows: the queued ones' places follow the summaries.
        await alices.send_json_to({"jobs": ids([first, second, third])})
        assert (await alices.receive_json_from(timeout=5))["type"] == "summaries"
        told = await alices.receive_json_from(timeout=5)
        assert told["type"] == "places"
        assert messages(told["places"]) == {
            str(first.pk): f"1st in line; {AT_LIMIT}",
            str(second.pk): f"2nd in line; {AT_LIMIT}",
            str(third.pk): f"3rd in line; {AT_LIMIT}",
        }
        await olgas.send_json_to({"jobs": ids([second, third])})
        assert (await olgas.receive_json_from(timeout=5))["type"] == "summaries"
        assert messages((await olgas.receive_json_from(timeout=5))["places"]) == {
            str(second.pk): f"2nd in line; {ALICE_AT_LIMIT}",
            str(third.pk): f"3rd in line; {ALICE_AT_LIMIT}",
        }
        await bobs.send_json_to({"jobs": ids([first, second, third])})
        assert await bobs.receive_json_from(timeout=5) == {"type": "summaries", "jobs": []}
        await thirds_page.send_json_to({"after_step": -1, "attempt": 0})
        assert (await thirds_page.receive_json_from(timeout=5))["type"] == "points"
        assert (await thirds_page.receive_json_from(timeout=5))["places"][0]["sentence"] == (
            f"Queued: 3rd in line; {AT_LIMIT}."
        )

        # Her first in line is cancelled: the others move up, everywhere at once.
        await sync_to_async(cancel_job)(first)
        moved = await next_places(alices)
        assert moved["version"] > told["version"]
        assert messages(moved["places"]) == {
            str(second.pk): f"1st in line; {AT_LIMIT}",
            str(third.pk): f"2nd in line; {AT_LIMIT}",
        }
        assert messages((await next_places(olgas))["places"]) == {
            str(second.pk): f"1st in line; {ALICE_AT_LIMIT}",
            str(third.pk): f"2nd in line; {ALICE_AT_LIMIT}",
        }
        page_told = await next_places(thirds_page)
        assert [place["sentence"] for place in page_told["places"]] == [
            f"Queued: 2nd in line; {AT_LIMIT}."
        ]
        assert await bobs.receive_nothing(timeout=0.5)
        for socket in (alices, bobs, olgas, thirds_page):
            await socket.disconnect()

    run_in_own_loop(scenario)


def test_a_job_sent_to_a_worker_is_said_released_and_the_rest_move_up(alice):
    async def scenario():
        running, (first, second, third) = await sync_to_async(alice_at_her_limit_with_three_held)(
            alice
        )
        alices = socket_for(alice, "/ws/jobs/")
        assert (await alices.connect(timeout=10))[0]
        await alices.send_json_to({"jobs": ids([first, second, third])})
        told = await next_places(alices)

        # Her running job ends: her first in line goes to the free worker.
        await sync_to_async(ledger.finish_succeeded)(
            running.pk, 1, metrics={}, adapter_path="", adapter_bytes=0, trained_tokens=0,
            final_step=75,
        )  # fmt: skip
        moved = await next_places(alices)
        assert moved["version"] > told["version"]
        assert {
            place["id"]: (place["position"], place["message"]) for place in moved["places"]
        } == {
            str(first.pk): (None, f"Next: {RELEASED}"),
            str(second.pk): (1, f"1st in line; {AT_LIMIT}"),
            str(third.pk): (2, f"2nd in line; {AT_LIMIT}"),
        }
        await alices.disconnect()

    run_in_own_loop(scenario)
