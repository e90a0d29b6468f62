"""In Chromium, 390 px wide (a phone) and with the keyboard only: from the
account menu to a changed password, and a job page's socket that closes when
the session ends elsewhere."""

import re

import pytest
from playwright.sync_api import expect

from tests.builders import make_job, ready_sample
from tests.processes import PASSWORD, fits_the_screen, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a much longer passphrase 2"


def test_a_password_is_changed_on_a_phone_with_the_keyboard(phone, live_server_url, alice):
    log_in(phone, live_server_url, "alice")
    expect(phone).to_have_url(f"{live_server_url}/")
    # On a phone the account links are behind Menu, opened from the keyboard.
    phone.get_by_test_id("menu-button").focus()
    phone.keyboard.press("Enter")
    menu_link = phone.get_by_role("link", name="Password", exact=True)
    expect(menu_link).to_be_visible()
    menu_link.focus()
    phone.keyboard.press("Enter")
    expect(phone).to_have_url(f"{live_server_url}/account/password/")
    expect(phone.get_by_role("heading", name="Change your password")).to_be_visible()
    assert fits_the_screen(phone)

    # The current password has the focus; Tab leads through the form, Enter sends it.
    expect(phone.get_by_label("Current password")).to_be_focused()
    phone.keyboard.type("not my password")
    phone.keyboard.press("Tab")
    phone.keyboard.type(NEW_PASSWORD)
    phone.keyboard.press("Tab")
    expect(phone.get_by_label("New password, again")).to_be_focused()
    phone.keyboard.type(NEW_PASSWORD)
    phone.keyboard.press("Enter")
    expect(phone.get_by_test_id("old-password-error")).to_have_text(
        "That is not your current password: type it again."
    )
    expect(phone.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    assert fits_the_screen(phone)

    phone.get_by_label("Current password").focus()
    phone.keyboard.type(PASSWORD)
    for field in ("New password", "New password, again"):
        phone.keyboard.press("Tab")
        expect(phone.get_by_label(field, exact=True)).to_be_focused()
        phone.keyboard.type(NEW_PASSWORD)
    phone.keyboard.press("Tab")
    expect(phone.get_by_label(re.compile("Also revoke all my API tokens"))).to_be_focused()
    phone.keyboard.press("Space")
    phone.keyboard.press("Tab")
    phone.keyboard.press("Tab")  # past the link to the tokens page
    expect(phone.get_by_role("button", name="Change password")).to_be_focused()
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("status")).to_have_text(
        "Your password was changed, and every other browser signed out."
    )

    # Still signed in here; the new password is the one that logs in.
    phone.goto(f"{live_server_url}/jobs/")
    expect(phone).to_have_url(f"{live_server_url}/jobs/")
    phone.get_by_test_id("menu-button").click()
    phone.get_by_role("button", name="Log out").click()
    log_in(phone, live_server_url, "alice", NEW_PASSWORD)
    expect(phone).to_have_url(f"{live_server_url}/")


def test_a_job_page_open_in_another_tab_goes_to_the_login_when_the_session_ends(
    page, live_server_url, alice, demo_models
):
    job = make_job(alice, ready_sample(alice))
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/{job.pk}/")
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")

    # The same browser, another tab: logging out there ends this tab's session too.
    other = page.context.new_page()
    other.goto(f"{live_server_url}/")
    other.get_by_role("button", name="Log out").click()
    expect(other).to_have_url(re.compile(r"/login/$"))

    # Its socket was closed (4401): the page reloaded into the login page.
    expect(page).to_have_url(f"{live_server_url}/login/?next=/jobs/{job.pk}/")
