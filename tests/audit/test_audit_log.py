"""The audit log (issue 16): logins, an operator's action on another's job, a
change that rolled back, retention, and /ops/audit/ with its filters and CSV.
Every route's own entry is the access matrix's (tests/test_access_matrix.py)."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import forget_old_entries, record
from jobs.models import JobStatus
from jobs.services.lifecycle import cancel_job
from tests.builders import api_client, make_job, ready_sample
from tests.processes import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_models")]


def newest(**filters) -> AuditEntry:
    return AuditEntry.objects.filter(**filters).order_by("-pk").first()


def test_a_failed_login_is_recorded_against_the_account_with_its_address(alice):
    response = Client(REMOTE_ADDR="203.0.113.9").post(
        "/login/", {"username": "alice", "password": "wrong"}
    )
    assert response.status_code == 200
    entry = newest(action="login_failed")
    assert (entry.door, entry.ip, entry.actor, entry.owner, entry.target_name) == (
        "page", "203.0.113.9", None, alice, "alice"
    )  # fmt: skip


def test_a_failed_login_of_an_unknown_name_names_it(db):
    Client().post("/admin/login/", {"username": "mallory", "password": "x"})
    entry = newest(action="login_failed")
    assert (entry.door, entry.owner, entry.owner_name, entry.target_type) == (
        "admin", None, "mallory", "auth.user"
    )  # fmt: skip


def test_a_login_and_a_logout_are_recorded_as_the_user(alice):
    client = Client()
    client.post("/login/", {"username": "alice", "password": PASSWORD})
    client.post("/logout/")
    login, logout = AuditEntry.objects.filter(actor=alice).order_by("pk")
    assert [(e.action, e.door, e.ip) for e in (login, logout)] == [
        ("login", "page", "127.0.0.1"), ("logout", "page", "127.0.0.1"),
    ]  # fmt: skip


def test_an_operators_cancel_of_anothers_job_is_marked_as_such(alice, olga):
    job = make_job(alice, ready_sample(alice), start=True)
    response = api_client(olga).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    entry = newest(action="cancel")
    assert (entry.actor, entry.owner, entry.door, entry.target_id) == (
        olga, alice, "api", str(job.pk)
    )  # fmt: skip
    assert (entry.actor_name, entry.owner_name) == ("olga", "alice")
    assert entry.on_anothers_object


def test_a_cancel_through_v1_is_recorded_at_that_door(alice):
    job = make_job(alice, ready_sample(alice), start=True)
    token = api_client(alice)._credentials["HTTP_AUTHORIZATION"]
    response = Client(HTTP_AUTHORIZATION=token).post(
        f"/v1/fine_tuning/jobs/ftjob-{job.pk.hex}/cancel"
    )
    assert response.status_code == 200
    entry = newest(action="cancel")
    assert (entry.actor, entry.door, entry.on_anothers_object) == (alice, "v1", False)


def test_a_change_that_rolls_back_leaves_no_entry(alice):
    job = make_job(alice, ready_sample(alice), start=True)
    before = AuditEntry.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        cancel_job(job)
        raise RuntimeError("the request failed after the cancel")
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert AuditEntry.objects.count() == before


def test_a_change_without_a_request_is_the_systems(alice):
    dataset = ready_sample(alice)
    entry = newest(action="create", target_type="datasets.dataset")
    assert (entry.door, entry.actor, entry.ip, entry.owner, entry.target_id) == (
        "system", None, None, alice, str(dataset.pk)
    )  # fmt: skip


def test_entries_past_the_retention_are_forgotten(alice, settings):
    settings.TAILOR_AUDIT_RETENTION_DAYS = 30
    old = record("update", alice)
    AuditEntry.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=31))
    recent = record("update", alice)
    assert forget_old_entries() == 1
    assert list(AuditEntry.objects.filter(pk__in=[old.pk, recent.pk])) == [recent]
    settings.TAILOR_AUDIT_RETENTION_DAYS = 0
    AuditEntry.objects.filter(pk=recent.pk).update(at=timezone.now() - timedelta(days=3650))
    assert forget_old_entries() == 0


# --- /ops/audit/ ----------------------------------------------------------------------------


@pytest.fixture
def history(alice, bob, olga):
    """Alice's dataset and job, Bob's token, and Olga cancelling Alice's job."""
    AuditEntry.objects.all().delete()
    job = make_job(alice, ready_sample(alice), start=True)
    api_client(bob)
    AuditEntry.objects.filter(target_type="jobs.finetunejob").update(
        at=timezone.now() - timedelta(days=2)
    )
    api_client(olga).post(f"/api/v1/jobs/{job.pk}/cancel/")
    return job


def operator_client(olga) -> Client:
    client = Client()
    client.force_login(olga)
    return client


def shown(response) -> list[str]:
    """The actions of the page's rows, top down."""
    return re.findall(r'<tr id="audit-\d+" data-action="(\w+)"', response.content.decode())


def test_the_page_is_for_operators_only(history, alice):
    client = Client()
    client.force_login(alice)
    assert client.get("/ops/audit/").status_code == 404
    assert client.get("/ops/audit/export.csv").status_code == 404
    assert Client().get("/ops/audit/")["Location"].startswith("/login/")


def test_the_page_lists_newest_first_and_filters(history, olga):
    client = operator_client(olga)
    everything = client.get("/ops/audit/")
    assert everything.status_code == 200
    assert shown(everything)[0] == "login"  # olga's own, just now
    assert shown(client.get("/ops/audit/?actor=olga&action=cancel")) == ["cancel"]
    assert shown(client.get("/ops/audit/?owner=bob&kind=studio.apitoken")) == ["create"]
    assert shown(client.get("/ops/audit/?others=on")) == ["cancel"]
    assert shown(client.get("/ops/audit/?door=api&action=cancel")) == ["cancel"]
    assert shown(client.get("/ops/audit/?door=page&action=cancel")) == []
    today = timezone.localdate().isoformat()
    assert "create" not in shown(client.get(f"/ops/audit/?kind=jobs.finetunejob&since={today}"))
    refused = client.get(f"/ops/audit/?since={today}&until=2000-01-01")
    assert "Pick a day on or after the first one." in refused.content.decode()


def test_the_csv_holds_the_filtered_rows(history, olga):
    response = operator_client(olga).get("/ops/audit/export.csv?others=on")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["who"], r["action"], r["door"], r["owner"], r["on another's object"])
            for r in rows] == [("olga", "cancel", "api", "alice", "yes")]  # fmt: skip
    assert rows[0]["object id"] == str(history.pk)


def test_the_csv_defuses_a_name_a_spreadsheet_would_run(alice, olga):
    record("update", alice, target_name='=HYPERLINK("http://evil.example")')
    response = operator_client(olga).get("/ops/audit/export.csv?action=update")
    text = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in text
