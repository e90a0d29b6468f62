"""/healthz and a task round trip through a real Celery worker on every queue.

Staff and API-token callers read each part's details; anyone else learns only
whether each part is up (no error text, which can name hosts and paths).
"""

import pytest
from django.test import Client, override_settings

from jobs.services.lifecycle import flags_client
from studio.celery import app
from studio.redis_server import free_port
from studio.services import leases
from studio.services.tokens import create_token
from tests.processes import Beat, wait_for

pytestmark = [pytest.mark.integration]
# Every test but the round trip reads the database. The round trip must not:
# on SQLite a test's transaction begins IMMEDIATE and holds the write lock
# until it ends, and the worker may first have to write (a claim left by an
# earlier test), so a test that waits on the worker inside one can wait out
# its timeout.
database = pytest.mark.django_db

QUEUES = ("default", "train", "infer", "evaluate", "maintenance")


@pytest.fixture
def operator_client(client, olga):
    client.force_login(olga)
    return client


def redis_down():
    return override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}")


@pytest.mark.parametrize("queue", ["default", "train", "infer", "evaluate", "maintenance"])
def test_a_task_round_trips_through_a_real_worker_on_each_queue(celery_worker, queue):
    result = app.send_task("studio.worker_facts", queue=queue)
    facts = result.get(timeout=60)
    assert facts["torch"] == "2.13.0"
    assert facts["cuda"] is False
    assert facts["devices"] == []
    assert isinstance(facts["pid"], int)


def reaper_ran() -> None:
    """Send the maintenance task as beat does; the maintenance worker runs it
    (and no earlier one is still on its way once this returns)."""
    flags_client().delete(leases.REAPER_ALIVE_KEY)
    app.send_task("studio.maintenance", queue="maintenance")
    wait_for(lambda: leases.reaper_last_run_age() is not None, 30, "the reaper to run")


@database
def test_healthz_reports_every_part_up_with_a_worker_on_each_queue(operator_client, celery_worker):
    reaper_ran()
    response = operator_client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["database"]["up"] is True
    assert body["redis"]["up"] is True
    assert body["reaper"]["up"] is True
    assert 0 <= body["reaper"]["last_run_seconds_ago"] < 15
    assert body["queues"] == {
        "default": {"up": True, "workers": 1},
        "train": {"up": True, "workers": 1},
        "infer": {"up": True, "workers": 1},
        "evaluate": {"up": True, "workers": 1},
        "maintenance": {"up": True, "workers": 1},
    }


@database
def test_healthz_answers_503_when_the_reaper_has_not_run_lately(operator_client, celery_worker):
    reaper_ran()
    flags_client().delete(leases.REAPER_ALIVE_KEY)  # as if its last run were long ago
    response = operator_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["reaper"] == {
        "up": False,
        "error": f"The reaper has not run for {leases.reaper_stale_after()} s: is celery beat "
        "running, with a worker on the maintenance queue?",
    }


@database
def test_healthz_answers_503_and_names_a_queue_nobody_serves(operator_client, celery_worker):
    with override_settings(TAILOR_QUEUES=("default", "train", "infer", "export")):
        response = operator_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["queues"]["export"] == {"up": False, "workers": 0}
    assert body["queues"]["default"]["up"] is True


@database
def test_healthz_answers_503_when_redis_is_down(operator_client):
    with redis_down():
        response = operator_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"]["up"] is False
    assert "ConnectionError" in body["redis"]["error"]
    assert body["queues"]["train"] == {"up": False, "workers": 0, "error": "Redis is down"}
    assert body["reaper"] == {"up": False, "error": "Redis is down"}
    assert body["database"]["up"] is True


@database
def test_an_anonymous_caller_learns_only_what_is_up(client, celery_worker):
    reaper_ran()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "database": {"up": True},
        "redis": {"up": True},
        "reaper": {"up": True},
        "queues": {name: {"up": True} for name in QUEUES},
    }


@database
def test_an_anonymous_caller_gets_no_error_text_when_a_part_is_down(client):
    with redis_down():
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "ok": False,
        "database": {"up": True},
        "redis": {"up": False},
        "reaper": {"up": False},
        "queues": {name: {"up": False} for name in QUEUES},
    }
    assert b"error" not in response.content and b"127.0.0.1" not in response.content


@database
def test_an_api_token_caller_reads_the_details(client, alice):
    secret = create_token(alice, "monitor").secret
    with redis_down():
        response = client.get("/healthz", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 503
    assert "ConnectionError" in response.json()["redis"]["error"]


@database
@pytest.mark.parametrize(
    ("signed_in", "headers"),
    [
        pytest.param(False, {"HTTP_AUTHORIZATION": "Bearer tlr_not-a-token"}, id="wrong-token"),
        pytest.param(True, {}, id="analyst"),
    ],
)
def test_a_wrong_token_or_an_analysts_session_reads_no_details(client, alice, signed_in, headers):
    if signed_in:
        client.force_login(alice)
    with redis_down():
        response = client.get("/healthz", **headers)
    assert response.status_code == 503
    assert response.json()["redis"] == {"up": False}


@database
def test_the_home_pages_status_panel_shows_operators_each_part(
    operator_client, alice, celery_worker
):
    # The fleet's status is the operators': an analyst is refused it.
    analyst = Client()
    analyst.force_login(alice)
    assert analyst.get("/status/", HTTP_HX_REQUEST="true").status_code == 403
    html = operator_client.get("/status/", HTTP_HX_REQUEST="true").content.decode()
    assert "<td>Database</td>" in html
    assert "<td>Redis</td>" in html
    assert "<td>Reaper</td>" in html
    for queue in ("default", "train", "infer", "evaluate", "maintenance"):
        assert f"<td>Queue <code>{queue}</code></td>" in html
    assert "1 worker" in html
    assert "<html" not in html  # the partial alone, not the whole page


@database
def test_beat_runs_the_reaper_as_it_starts_not_one_interval_later(celery_worker, tmp_path):
    flags_client().delete(leases.REAPER_ALIVE_KEY)
    # An hour's interval: only the round sent at start can run within the wait.
    beat = Beat(tmp_path, TAILOR_REAPER_INTERVAL_SECONDS="3600").start()
    try:
        wait_for(lambda: leases.reaper_last_run_age() is not None, 60, "the reaper's first round")
    finally:
        beat.stop()
