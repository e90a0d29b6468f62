"""Real Celery workers report themselves to Redis from their parent process,
every TAILOR_WORKER_HEARTBEAT_SECONDS, and stop when they shut down; a
worker killed outright turns red ("stopped reporting")."""

import pytest

from ops import workers
from tests.processes import CeleryWorker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def record(name: str) -> dict | None:
    return next((w for w in workers.read_all() if w["name"] == name), None)


def test_every_session_worker_reports_its_facts(celery_worker):
    names = {worker.name: worker for worker in CeleryWorker.running}
    for name, worker in names.items():
        found = wait_for(lambda n=name: record(n), 30, f"{name}'s heartbeat")
        assert found["reporting"] is True
        started_on = worker.queues.split(",")
        # A serving worker also takes a queue of its own (studio/services/capacity.py).
        own = [f"infer.{name}"] if "infer" in started_on else []
        assert found["queues"] == sorted(started_on + own)
        assert (found["device"], found["memory_from"]) == ("cpu", "host")
        assert found["memory_gib"] == round(found["memory_total"] / 2**30)
        assert found["concurrency"] == 1
        assert found["torch"] == "2.13.0"
        assert found["cuda"] == ""  # the CPU build: no CUDA
        assert found["gpus"] == []
        assert found["pid"] == worker.child.process.pid  # the parent, not a pool child
        assert found["memory_used"] > 10 * 2**20
        assert found["memory_total"] > found["memory_used"]
        assert found["uptime_seconds"] >= 0


def test_a_killed_worker_turns_red_and_a_stopped_one_leaves(django_db_blocker):
    doomed = CeleryWorker("ops-test", "ops-doomed", env={"TAILOR_WORKER_HEARTBEAT_SECONDS": "1"})
    doomed.start()
    try:
        first = wait_for(lambda: record(doomed.name), 30, "the heartbeat")
        assert first["queues"] == ["ops-test"]
        later = wait_for(
            lambda: (r := record(doomed.name)) and r["uptime_seconds"] > first["uptime_seconds"] + 1.5 and r,
            15, "a later beat",
        )  # fmt: skip
        assert later["reporting"] is True
        doomed.kill()
        stale = wait_for(
            lambda: (r := record(doomed.name)) and not r["reporting"] and r, 10, "the worker to turn red"
        )  # fmt: skip
        assert stale["last_beat_seconds_ago"] is None
    finally:
        doomed.stop()
    calm = CeleryWorker("ops-test", "ops-calm", env={"TAILOR_WORKER_HEARTBEAT_SECONDS": "1"})
    calm.start()
    wait_for(lambda: record(calm.name), 30, "the heartbeat")
    calm.stop()  # SIGTERM: a warm shutdown
    assert record(calm.name) is None
    workers.forget(doomed.name)
