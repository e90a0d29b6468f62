"""/healthz and a task round trip through a real Celery worker on every queue."""

import pytest
from django.test import override_settings

from jobs.services.lifecycle import flags_client
from studio.celery import app
from studio.redis_server import free_port
from studio.services import leases
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


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


def test_healthz_reports_every_part_up_with_a_worker_on_each_queue(client, celery_worker):
    reaper_ran()
    response = client.get("/healthz")
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


def test_healthz_answers_503_when_the_reaper_has_not_run_lately(client, celery_worker):
    reaper_ran()
    flags_client().delete(leases.REAPER_ALIVE_KEY)  # as if its last run were long ago
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["reaper"] == {
        "up": False,
        "error": f"The reaper has not run for {leases.reaper_stale_after()} s: is celery beat "
        "running, with a worker on the maintenance queue?",
    }


def test_healthz_answers_503_and_names_a_queue_nobody_serves(client, celery_worker):
    with override_settings(TAILOR_QUEUES=("default", "train", "infer", "export")):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["queues"]["export"] == {"up": False, "workers": 0}
    assert body["queues"]["default"]["up"] is True


def test_healthz_answers_503_when_redis_is_down(client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}"):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"]["up"] is False
    assert "ConnectionError" in body["redis"]["error"]
    assert body["queues"]["train"] == {"up": False, "workers": 0, "error": "Redis is down"}
    assert body["reaper"] == {"up": False, "error": "Redis is down"}
    assert body["database"]["up"] is True


def test_the_dashboard_status_panel_shows_each_part(alice_client, celery_worker):
    html = alice_client.get("/status/", HTTP_HX_REQUEST="true").content.decode()
    assert "<td>Database</td>" in html
    assert "<td>Redis</td>" in html
    assert "<td>Reaper</td>" in html
    for queue in ("default", "train", "infer", "evaluate", "maintenance"):
        assert f"<td>Queue <code>{queue}</code></td>" in html
    assert "1 worker" in html
    assert "<html" not in html  # the partial alone, not the whole page
