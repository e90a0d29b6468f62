"""In Chromium: an analyst opens Usage from the account menu, steps back to
last month by keyboard and reads its device time, cost, tokens and jobs; on
a phone (390 px) nothing scrolls sideways. An operator goes from /ops/ to
every user's usage and sorts it. Last month's figures: this month's so far
depend on the hour the tests run."""

from datetime import timedelta
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from serving.models import Generation, GenerationStatus
from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in
from usage.models import DeviceUse
from usage.services.report import Month

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def serious_accessibility_problems(page) -> list[str]:
    """What axe-core rates serious or critical, and headings that skip a level."""
    return [
        f"{v['id']}: {v['help']}"
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical") or v["id"] == "heading-order"
    ]


def trained_last_month(owner, name: str, seconds: float, tokens: tuple[int, int]):
    last = Month.of().previous
    job = make_job(owner, ready_sample(owner), name=name)
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now()
    )
    ended = last.start + timedelta(days=10)
    DeviceUse.objects.create(
        owner=owner, job=job, job_name=name, attempt=1, worker="train@gpu-1", device="NVIDIA L4",
        price_per_hour=Decimal("1"), started_at=ended - timedelta(seconds=seconds),
        last_seen_at=ended, ended_at=ended, seconds=seconds,
    )  # fmt: skip
    Generation.objects.create(
        owner=owner, source="playground", base_model_id="tailor-tiny", task="causal-lm",
        panes=[{"model": "tailor-tiny", "label": "A", "job": None}], text="hi",
        status=GenerationStatus.SUCCEEDED, finished_at=ended,
        prompt_tokens=tokens[0], completion_tokens=tokens[1],
    )  # fmt: skip
    return job


def test_an_analyst_reads_last_months_usage_at_1280_and_390_px(page, phone, live_server_url,
                                                               alice):  # fmt: skip
    job = trained_last_month(alice, "routing", 2400, (1_200, 300))
    last = Month.of().previous

    log_in(page, live_server_url, "alice")
    page.get_by_test_id("usage-link").click()
    expect(page.get_by_role("heading", name="Usage", level=1)).to_be_visible()
    expect(page.get_by_test_id("usage-no-jobs")).to_contain_text("No training in")
    # By keyboard: to the previous month's link, then Enter.
    previous = page.get_by_test_id("previous-month")
    previous.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server_url}/usage/?month={last.key}")
    expect(page.get_by_test_id("usage-device-time")).to_have_text("40 min")
    expect(page.get_by_test_id("usage-device-hours")).to_contain_text("0.67 device-hours")
    expect(page.get_by_test_id("usage-cost")).to_have_text("$0.67")
    expect(page.get_by_test_id("usage-tokens")).to_have_text("1,500")
    expect(page.get_by_test_id("usage-tokens-split")).to_contain_text("1,200 in · 300 out")
    row = page.get_by_test_id("usage-jobs").get_by_role("row", name="routing")
    expect(row).to_contain_text("NVIDIA L4")
    expect(row).to_contain_text("$0.67")
    expect(row.get_by_role("link", name="routing")).to_have_attribute("href", f"/jobs/{job.pk}/")
    with page.expect_download() as download:
        page.get_by_test_id("usage-export").click()
    assert download.value.suggested_filename == f"tailor-usage-alice-{last.key}.csv"
    assert serious_accessibility_problems(page) == []

    log_in(phone, live_server_url, "alice")
    phone.get_by_test_id("menu-button").click()
    phone.get_by_test_id("usage-link").click()
    expect(phone.get_by_role("heading", name="Usage", level=1)).to_be_visible()
    phone.get_by_test_id("previous-month").click()
    expect(phone.get_by_test_id("usage-cost")).to_have_text("$0.67")
    assert fits_the_screen(phone)
    assert serious_accessibility_problems(phone) == []
    # The jobs' table scrolls inside its region, which a keyboard reaches.
    region = phone.get_by_role("region", name="Jobs of the month")
    region.focus()
    expect(region).to_be_focused()


def test_an_operator_sorts_every_users_usage(page, phone, live_server_url, alice, bob, olga):
    trained_last_month(alice, "routing", 7200, (100, 20))  # the longest, the fewest tokens
    trained_last_month(bob, "sentiment", 600, (40_000, 9_000))
    last = Month.of().previous

    log_in(page, live_server_url, "olga")
    page.goto(f"{live_server_url}/ops/")
    page.get_by_test_id("ops-usage-link").click()
    expect(page.get_by_role("heading", name="Usage by user", level=1)).to_be_visible()
    page.get_by_test_id("previous-month").click()
    table = page.get_by_test_id("ops-usage")
    users = table.locator("tbody tr")
    expect(users.first).to_have_attribute("data-user", "alice")  # by cost: $2.00 first
    expect(table.locator("tfoot")).to_contain_text("$2.17")
    expect(table.locator("tfoot")).to_contain_text("49,120")
    page.get_by_test_id("sort-tokens").click()
    expect(page).to_have_url(f"{live_server_url}/ops/usage/?month={last.key}&sort=tokens")
    expect(users.first).to_have_attribute("data-user", "bob")
    expect(table.get_by_role("columnheader", name="Tokens served")).to_have_attribute(
        "aria-sort", "descending"
    )
    assert serious_accessibility_problems(page) == []

    log_in(phone, live_server_url, "olga")
    phone.goto(f"{live_server_url}/ops/usage/?month={last.key}")
    expect(phone.get_by_test_id("ops-usage")).to_be_visible()
    assert fits_the_screen(phone)
    assert serious_accessibility_problems(phone) == []
