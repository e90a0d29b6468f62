"""In Chromium: the API tokens page copies a new token, says nothing about
`manage.py` to analysts, and its form fits a phone."""

import pytest
from playwright.sync_api import expect

from studio.services.tokens import TOKEN_PREFIX
from tests.processes import fits_the_screen, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_new_token_is_copied_with_one_click(page, live_server_url, alice):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/tokens/")
    empty = page.locator(".empty-state")
    expect(empty).to_contain_text("You have no API tokens yet")
    expect(empty).not_to_contain_text("manage.py")

    page.get_by_label("New token name").fill("nightly pipeline")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40

    page.get_by_test_id("copy-token").click()
    expect(page.locator("[data-copy-status]")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret


def test_the_token_form_and_list_fit_a_phone(phone, live_server_url, alice):
    log_in(phone, live_server_url, "alice")
    phone.goto(f"{live_server_url}/tokens/")
    phone.get_by_label("New token name").fill("phone script")
    phone.get_by_role("button", name="Create token").click()
    expect(phone.get_by_test_id("new-secret")).to_be_visible()
    assert fits_the_screen(phone)
    # Each field takes the card's width, not a squeezed 40 px.
    for label in ("New token name", "Expires", "Requests a minute"):
        width = phone.get_by_label(label).bounding_box()["width"]
        assert width > 250, (label, width)
