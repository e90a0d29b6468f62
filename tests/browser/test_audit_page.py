"""In Chromium: an operator reads the audit log on a phone, filters it (the
checkbox and the submit by keyboard), and finds an operator's cancel of another
user's job."""

import pytest
from playwright.sync_api import expect

from tests.builders import api_client, make_job, ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def test_an_operator_filters_the_audit_log_on_a_phone_by_keyboard(
    phone, live_server_url, alice, olga
):
    job = make_job(alice, ready_sample(alice), start=True)
    api_client(olga).post(f"/api/v1/jobs/{job.pk}/cancel/")
    log_in(phone, live_server_url, "olga")
    phone.goto(f"{live_server_url}/ops/audit/")
    expect(phone.get_by_role("heading", name="Audit log")).to_be_visible()
    assert fits_the_screen(phone)

    phone.get_by_label("Action", exact=True).select_option("cancel")
    phone.get_by_label("Only actions on someone else's object").focus()
    phone.keyboard.press("Space")
    phone.keyboard.press("Enter")
    rows = phone.locator("#audit-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("olga")
    expect(rows.first).to_contain_text("native API")
    expect(rows.first).to_contain_text(job.name)
    expect(rows.first).to_contain_text("another's")
    assert fits_the_screen(phone)
    # The table scrolls inside its region, which a keyboard reaches.
    region = phone.get_by_role("region", name="Audit entries")
    region.focus()
    expect(region).to_be_focused()
    assert "others=on" in phone.get_by_test_id("audit-export").get_attribute("href")
