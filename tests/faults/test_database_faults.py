"""PostgreSQL restarted under a running job (issue 12's fault test 7), with
real workers, Redis, beat and training. The PostgreSQL pass of `make test`
runs it: it restarts the server the tests use, which needs root."""

import subprocess

import pytest
from asgiref.sync import SyncToAsync
from django.db import connection, connections

from jobs.models import MetricPoint
from tests.builders import STEPS, queue_short_job, ready_sample
from tests.faults.checks import events, one_live_run_at_a_time
from tests.processes import (
    PRODUCTION_TRAIN,
    CeleryWorker,
    Stopwatch,
    job_when_finished,
    studio,
    wait_until_step,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.faults,
    pytest.mark.postgresql,
]


def restart_postgresql() -> None:
    """Restart the cluster that serves the tests' port (Debian's pg_ctlcluster)."""
    port = str(connection.settings_dict.get("PORT") or 5432)
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,
                              check=True).stdout.splitlines()  # fmt: skip
    for line in clusters:
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            connection.close()
            subprocess.run(["pg_ctlcluster", version, name, "restart"], check=True, timeout=60)
            return
    pytest.fail(f"No PostgreSQL cluster of this machine listens on port {port}: {clusters}")


@pytest.fixture
def connections_of_other_threads_closed_after():
    """The restart kills every connection of this process. The main thread's
    is replaced by pytest-django; the one asgiref's single thread holds (the
    `sync_to_async` calls of earlier websocket tests) would stay dead, and
    every later test that uses that thread would fail: close it there too."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(10)


@pytest.mark.usefixtures("connections_of_other_threads_closed_after")
def test_a_job_outlives_a_postgresql_restart_on_its_first_attempt_with_every_point(
    alice, demo_models, tmp_path, record_property
):
    assert connection.vendor == "postgresql"
    # A lease long enough to outlast the restart: this test is about the
    # connections, not the reaper.
    train = CeleryWorker("train", "fault-train", args=PRODUCTION_TRAIN,
                         env={"TAILOR_JOB_LEASE_SECONDS": "30"})  # fmt: skip
    with studio(tmp_path, train):
        job = queue_short_job(alice, ready_sample(alice))
        wait_until_step(job, 5)
        restart_postgresql()
        clock = Stopwatch("PostgreSQL restarted mid-job", record_property)
        done = job_when_finished(job)
        clock.lap("job succeeded")
    assert (done.status, done.attempt, done.current_step) == ("succeeded", 1, STEPS)
    steps = list(MetricPoint.objects.filter(job=done, kind="train").values_list("step", flat=True))
    assert steps == list(range(1, STEPS + 1))  # not one point lost
    assert events(done, "Running on")
    assert not events(done, "The training worker stopped responding")
    one_live_run_at_a_time(done)
