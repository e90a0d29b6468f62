"""The usage pages and their twins: /usage/ (each user, on themselves; staff
on anyone with ?user=), /ops/usage/ (staff only), their CSVs,
GET /api/v1/usage/, and a job's device time and cost on its page and in the
jobs API. Real database and Redis; no worker: device time is written as the
training worker leaves it."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import FineTuneJob, JobStatus
from jobs.services.lifecycle import delete_job
from quotas.models import QuotaOverride
from serving.models import Generation, GenerationStatus
from tests.builders import api_client, make_job, ready_sample
from usage.models import DeviceUse
from usage.services.report import Month

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_models")]


def ran(job, seconds: float, *, attempt: int = 1, price: str = "1", device: str = "cpu",
        ended: datetime | None = None) -> DeviceUse:  # fmt: skip
    """An attempt of `job` that held `device` for `seconds`, ending at `ended` (now)."""
    ended = ended or timezone.now()
    return DeviceUse.objects.create(
        owner=job.owner, job=job, job_name=job.name, attempt=attempt, worker="train@here",
        device=device, price_per_hour=Decimal(price), started_at=ended - timedelta(seconds=seconds),
        last_seen_at=ended, ended_at=ended, seconds=seconds,
    )  # fmt: skip


def served(owner, prompt: int, completion: int, *, at: datetime | None = None) -> Generation:
    """A generation answered at `at` (now), with these tokens over its panes."""
    return Generation.objects.create(
        owner=owner, source="api", base_model_id="tailor-tiny", task="causal-lm",
        panes=[{"model": "tailor-tiny", "label": "A", "job": None}], text="hi",
        status=GenerationStatus.SUCCEEDED, finished_at=at or timezone.now(),
        prompt_tokens=prompt, completion_tokens=completion,
    )  # fmt: skip


def finished(job, **fields) -> FineTuneJob:
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now(), **fields
    )
    return FineTuneJob.objects.get(pk=job.pk)


@pytest.fixture
def olga_client(olga):
    from django.test import Client

    client = Client()
    client.force_login(olga)
    return client


# The figures are last month's, a whole month at fixed times: this month's
# so far depends on the hour the tests run (a month begins at midnight UTC).
LAST = Month.of().previous


def at(days: float) -> datetime:
    return LAST.start + timedelta(days=days)


@pytest.fixture
def month_of_alice(alice, bob):
    """Last month: alice trained two jobs (one attempt on a GPU at 4 an hour,
    one job she deleted since) and was served tokens; bob trained free hours
    and was served more tokens; the month before, alice trained one more."""
    dataset = ready_sample(alice)
    routing = finished(make_job(alice, dataset, name="routing"))
    ran(routing, 600, price="1", ended=at(2))
    ran(routing, 1800, attempt=2, price="4", device="NVIDIA L4", ended=at(3))
    tidy = finished(make_job(alice, dataset, name='=HYPERLINK("http://evil.example")'))
    ran(tidy, 360, price="1", ended=at(4))
    delete_job(tidy)
    served(alice, 1_000, 250, at=at(5))
    served(alice, 200, 50, at=at(5.5))
    bobs = finished(make_job(bob, ready_sample(bob), name="sentiment"))
    ran(bobs, 7200, price="0", ended=at(6))
    served(bob, 40_000, 10_000, at=at(6))
    old = finished(make_job(alice, dataset, name="the month before"))
    ran(old, 3600, price="1", ended=LAST.previous.start + timedelta(days=3))
    return routing


# --- a user's page -----------------------------------------------------------------------------


def test_a_user_sees_a_month_with_its_jobs_and_their_limits(alice_client, alice, month_of_alice):
    QuotaOverride.objects.create(user=alice, device_hours_per_month=2, tokens_per_day=10_000)
    served(alice, 100, 20)  # today
    response = alice_client.get(f"/usage/?month={LAST.key}")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"What your training and answers used in {LAST.label} (UTC)." in html
    # 10 min + 30 min + 6 min: 46 min, 0.77 device-hours of her 2.
    assert 'data-testid="usage-device-time">46 min<' in html
    assert "0.77 device-hours of your 2 a month (38 % used)" in html
    # 600 s at 1 + 1,800 s at 4 + 360 s at 1 an hour: 0.17 + 2.00 + 0.10.
    assert 'data-testid="usage-cost">$2.27<' in html
    assert 'data-testid="usage-tokens">1,500<' in html
    assert "1,200 in · 300 out" in html
    assert "Today: 120 of your 10,000 a day (UTC)" in html
    # The jobs, the deleted one under its name; bob's are not hers.
    assert f'<a href="/jobs/{month_of_alice.pk}/">routing</a>' in html
    assert "cpu, NVIDIA L4" in html
    assert "=HYPERLINK(&quot;http://evil.example&quot;)</td>" in html
    assert "<td>Deleted</td>" in html
    assert "sentiment" not in html and "the month before" not in html
    assert f'href="/usage/?month={LAST.previous.key}" data-testid="previous-month"' in html
    assert f'href="/usage/?month={Month.of().key}" data-testid="next-month"' in html
    # Reached from the account menu.
    assert 'href="/usage/" class="secondary" data-testid="usage-link"' in html


def test_this_month_is_the_default_and_has_no_next(alice_client, month_of_alice):
    html = alice_client.get("/usage/").content.decode()
    assert f"used in {Month.of().label} (UTC)." in html
    assert 'data-testid="usage-device-time">none<' in html
    assert 'data-testid="next-month"' not in html
    assert f"No training in {Month.of().label}" in html
    assert 'href="/jobs/new/">start one</a>' in html


@pytest.mark.parametrize(
    ("month", "sentence"),
    [("2026-13", "The month must be written YYYY-MM, like {current}."),
     ("last", "The month must be written YYYY-MM, like {current}."),
     ("1999-12", "The month must be 2000-01 or later."),
     ("9999-01", "The month must not be after this month, {current}.")],
)  # fmt: skip
def test_a_month_that_cannot_be_read_is_a_400_that_says_why(alice, alice_client, month,
                                                            sentence):  # fmt: skip
    response = alice_client.get(f"/usage/?month={month}")
    assert response.status_code == 400
    expected = sentence.format(current=Month.of().key)
    assert f'data-testid="month-error">{expected}<' in response.content.decode()
    api = api_client(alice).get(f"/api/v1/usage/?month={month}")
    assert api.status_code == 400
    assert api.json() == {"error": {
        "code": "invalid", "field": "month",
        "message": "month: " + expected.replace("The month must", "Must"),
    }}  # fmt: skip


def test_with_every_price_zero_the_page_shows_no_cost(alice_client, alice):
    job = finished(make_job(alice, ready_sample(alice)))
    ran(job, 60, price="0", ended=at(1))
    html = alice_client.get(f"/usage/?month={LAST.key}").content.decode()
    assert 'data-testid="usage-device-time">1 min 00 s<' in html
    assert "usage-cost" not in html
    assert "Cost</th>" not in html


def test_a_user_may_not_see_anothers_usage_and_staff_may(alice_client, olga_client,
                                                         month_of_alice):  # fmt: skip
    # Whether the user named exists or not, the answer is the same 403.
    assert alice_client.get("/usage/?user=bob").status_code == 403
    assert alice_client.get("/usage/?user=nobody").status_code == 403
    assert alice_client.get("/usage/export.csv?user=bob").status_code == 403
    assert alice_client.get("/usage/?user=alice").status_code == 200
    html = olga_client.get(f"/usage/?user=alice&month={LAST.key}").content.decode()
    assert "What <strong>alice</strong>'s training" in html
    assert 'data-testid="usage-cost">$2.27<' in html
    assert f"?user=alice&amp;month={LAST.previous.key}" in html  # its links stay on alice
    assert olga_client.get("/usage/?user=nobody").status_code == 404


def test_the_users_csv_lists_the_months_jobs_with_formulas_defused(alice_client,
                                                                   month_of_alice):  # fmt: skip
    response = alice_client.get(f"/usage/export.csv?month={LAST.key}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="tailor-usage-alice-{LAST.key}.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["month", "job id", "job", "status", "attempts", "devices", "device seconds",
         "device hours", "cost", "currency"],
        [LAST.key, str(month_of_alice.pk), "routing", "Succeeded", "2", "cpu NVIDIA L4",
         "2400.0", "0.6667", "2.1667", "USD"],
        [LAST.key, "", "'=HYPERLINK(\"http://evil.example\")", "Deleted", "1", "cpu", "360.0",
         "0.1000", "0.1000", "USD"],
    ]  # fmt: skip


# --- the operators' page -----------------------------------------------------------------------


def test_analysts_are_refused_the_operators_usage_page_and_its_csv(alice_client):
    for path in ("/ops/usage/", "/ops/usage/export.csv"):
        response = alice_client.get(path)
        assert response.status_code == 403
        assert "Not allowed" in response.content.decode()


def test_operators_see_every_users_month_sorted_with_totals(olga_client, month_of_alice):
    def users_by(sort: str) -> list[str]:
        html = olga_client.get(f"/ops/usage/?month={LAST.key}&sort={sort}").content.decode()
        return re.findall(r'<tr data-user="([^"]+)">', html)

    page = olga_client.get(f"/ops/usage/?month={LAST.key}")
    assert page.status_code == 200
    html = page.content.decode()
    # By cost first (bob's GPU hours were free), then hours, then tokens, then names.
    assert re.findall(r'<tr data-user="([^"]+)">', html) == ["alice", "bob", "olga"]
    assert users_by("hours") == ["bob", "alice", "olga"]
    assert users_by("tokens") == ["bob", "alice", "olga"]
    assert users_by("user") == ["alice", "bob", "olga"]
    assert users_by("nonsense") == ["alice", "bob", "olga"]  # the default: cost
    assert f'aria-sort="descending"><a href="?month={LAST.key}&amp;sort=cost"' in html
    total = html[html.index('data-testid="ops-usage-total"') :]
    # 0.77 + 2.00 device-hours; $2.27 + $0.00; 1,500 + 50,000 tokens.
    assert "2.77" in total and "$2.27" in total and "51,500" in total
    assert f'<a href="/usage/?user=alice&amp;month={LAST.key}">alice</a>' in html
    # Linked from /ops/.
    assert (
        'href="/ops/usage/" data-testid="ops-usage-link"'
        in olga_client.get("/ops/").content.decode()
    )


def test_the_operators_csv_has_every_user_and_the_totals(olga_client, month_of_alice):
    response = olga_client.get(f"/ops/usage/export.csv?month={LAST.key}&sort=user")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    key = LAST.key
    assert rows[0] == ["month", "user", "device seconds", "device hours", "cost", "currency",
                       "prompt tokens", "completion tokens", "storage bytes"]  # fmt: skip
    assert [row[1] for row in rows[1:]] == ["alice", "bob", "olga", "Total"]
    assert rows[1][:8] == [key, "alice", "2760.0", "0.7667", "2.2667", "USD", "1200", "300"]
    assert rows[4][:8] == [key, "Total", "9960.0", "2.7667", "2.2667", "USD", "41200", "10300"]


# --- the API ---------------------------------------------------------------------------------


def test_the_api_answers_the_same_month_as_json(alice, month_of_alice):
    month = LAST
    answer = api_client(alice).get(f"/api/v1/usage/?month={LAST.key}")
    assert answer.status_code == 200
    body = answer.json()
    jobs = body.pop("jobs")
    assert body == {
        "user": "alice", "month": month.key,
        "start": month.start.isoformat().replace("+00:00", "Z"),
        "end": month.end.isoformat().replace("+00:00", "Z"),
        "device_seconds": 2760.0, "device_hours": 0.7667, "cost": 2.2667, "currency": "USD",
        "tokens": {"prompt": 1200, "completion": 300, "total": 1500}, "tokens_today": 0,
        "storage_bytes": month_of_alice.dataset.size_bytes,
        "limits": {"device_hours_per_month": None, "tokens_per_day": None, "storage_bytes": None},
    }  # fmt: skip
    assert jobs[0] == {
        "id": str(month_of_alice.pk), "name": "routing", "status": "Succeeded", "attempts": 2,
        "devices": ["cpu", "NVIDIA L4"], "device_seconds": 2400.0, "cost": 2.1667,
    }  # fmt: skip
    assert jobs[1]["id"] is None
    before = api_client(alice).get(f"/api/v1/usage/?month={month.previous.key}").json()
    assert (before["device_seconds"], before["tokens"]["total"]) == (3600.0, 0)
    assert api_client(alice).get("/api/v1/usage/").json()["month"] == Month.of().key


def test_staff_may_ask_the_api_for_anyones_usage_and_others_may_not(alice, olga, month_of_alice):
    refused = api_client(alice).get("/api/v1/usage/?user=bob")
    assert refused.status_code == 403
    assert refused.json() == {"error": {
        "code": "permission_denied", "message": "Only operators may see another user's usage.",
    }}  # fmt: skip
    bobs = api_client(olga).get(f"/api/v1/usage/?user=bob&month={LAST.key}").json()
    assert (bobs["user"], bobs["device_seconds"], bobs["cost"]) == ("bob", 7200.0, 0.0)
    missing = api_client(olga).get("/api/v1/usage/?user=nobody")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No user is called nobody."


# --- a job's device time ------------------------------------------------------------------------


def test_the_job_page_shows_the_device_time_and_cost_against_the_estimate(alice, alice_client):
    job = make_job(alice, ready_sample(alice))
    estimate = {**job.estimate, "seconds": 46, "cost": 0.0128, "currency": "USD"}
    job = finished(job, estimate=estimate)
    ran(job, 120, price="1")
    ran(job, 171, attempt=2, price="1")
    html = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-testid="job-device-time">4 min 51 s · $0.08<' in html
    assert (
        'data-testid="job-device-time-vs-estimate">estimated 46 s · $0.01; took 4 min 51 s · '
        "$0.08, 6.3× the estimate<"
    ) in html


def test_a_job_that_never_ran_has_no_device_time(alice, alice_client):
    job = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
    html = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "job-device-time" not in html
    assert api_client(alice).get(f"/api/v1/jobs/{job.pk}/").json()["usage"] is None


def test_the_jobs_api_gives_each_jobs_usage_in_one_query_for_the_page(alice, month_of_alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api_client(alice)
    one = client.get(f"/api/v1/jobs/{month_of_alice.pk}/").json()
    assert one["usage"] == {"device_seconds": 2400.0, "cost": 2.1667, "currency": "USD"}
    with CaptureQueriesContext(connection) as queries:
        listed = client.get("/api/v1/jobs/").json()
    by_id = {job["id"]: job["usage"] for job in listed["results"]}
    assert by_id[str(month_of_alice.pk)]["device_seconds"] == 2400.0
    assert sum("usage_deviceuse" in q["sql"] for q in queries.captured_queries) == 1


def test_a_month_starts_and_ends_in_utc():
    month = Month.parse("2026-12")
    assert (month.start, month.end) == (
        datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    assert (month.previous.key, month.label) == ("2026-11", "December 2026")
    assert Month.parse("2027-01", now=datetime(2027, 1, 5, tzinfo=UTC)).previous.key == "2026-12"
