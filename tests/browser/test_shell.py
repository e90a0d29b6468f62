"""In Chromium: log in, see the dashboard shell, log out."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_analyst_logs_in_sees_the_dashboard_and_logs_out(page, live_server_url, alice):
    log_in(page, live_server_url, "alice")
    expect(page).to_have_url(f"{live_server_url}/")
    expect(page.get_by_role("heading", name="Welcome, alice")).to_be_visible()
    nav = page.locator("nav.container .main-nav")
    for label in ("Dashboard", "Datasets", "Jobs", "Playground", "Models", "API tokens"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    # The status panel is fetched by htmx after the page loads.
    expect(page.locator("#system-status table")).to_be_visible()
    expect(page.locator("#system-status")).to_contain_text("Database")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto(f"{live_server_url}/jobs/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/jobs/$"))


def test_an_operator_sees_the_admin_link(page, live_server_url, olga):
    log_in(page, live_server_url, "olga")
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def test_a_wrong_password_is_explained_on_the_page(page, live_server_url, alice):
    log_in(page, live_server_url, "alice", "not the password")
    expect(page.get_by_role("alert")).to_contain_text(
        "Please enter a correct username and password"
    )
