"""In Chromium: log in, the home page, the header on a phone, the skip link,
the error pages and the favicon; log out."""

import re

import pytest
from playwright.sync_api import expect

from tests.processes import fits_the_screen, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECTIONS = ("Dashboard", "Datasets", "Jobs", "Sweeps", "Playground", "Models", "API tokens")


def test_an_analyst_logs_in_sees_their_home_and_logs_out(page, live_server_url, alice):
    log_in(page, live_server_url, "alice")
    expect(page).to_have_url(f"{live_server_url}/")
    expect(page.get_by_role("heading", name="Welcome, alice")).to_be_visible()
    nav = page.locator("nav.container .main-nav")
    for label in SECTIONS:
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    # At 1280 px the sections are in the header itself: no Menu button.
    expect(page.get_by_test_id("menu-button")).to_be_hidden()
    # The fleet's status is the operators', not an analyst's.
    expect(page.locator("#system-status")).to_have_count(0)
    expect(page.get_by_test_id("next-step")).to_contain_text("Start with a dataset")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto(f"{live_server_url}/jobs/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/jobs/$"))


def test_an_operator_sees_the_system_status_and_the_admin_link(page, live_server_url, olga):
    log_in(page, live_server_url, "olga")
    # htmx fetches the status panel after the page loads.
    expect(page.locator("#system-status table")).to_be_visible()
    expect(page.locator("#system-status")).to_contain_text("Database")
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


def test_a_wrong_password_is_explained_on_the_page(page, live_server_url, alice):
    log_in(page, live_server_url, "alice", "not the password")
    expect(page.get_by_role("alert")).to_contain_text(
        "Please enter a correct username and password"
    )


def test_on_a_phone_the_header_folds_behind_a_menu_that_keyboards_can_use(
    phone, live_server_url, alice
):
    log_in(phone, live_server_url, "alice")
    assert fits_the_screen(phone)
    menu = phone.get_by_test_id("menu-button")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    jobs = phone.locator(".main-nav").get_by_role("link", name="Jobs", exact=True)
    expect(jobs).to_be_hidden()

    menu.focus()
    phone.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    for label in SECTIONS:
        link = phone.locator(".main-nav").get_by_role("link", name=label, exact=True)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (label, box)
    expect(phone.get_by_role("button", name="Log out")).to_be_in_viewport()
    assert fits_the_screen(phone)

    phone.keyboard.press("Escape")  # closes, and the focus goes back to Menu
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(jobs).to_be_hidden()
    assert phone.evaluate("document.activeElement.dataset.testid") == "menu-button"

    menu.click()
    jobs.click()
    expect(phone).to_have_url(f"{live_server_url}/jobs/")


def test_the_first_tab_offers_a_skip_link_to_the_content(page, live_server_url, alice):
    log_in(page, live_server_url, "alice")
    expect(page.get_by_role("heading", name="Welcome, alice")).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # The next Tab lands in the content, past the header's links.
    page.keyboard.press("Tab")
    assert page.evaluate("!!document.activeElement.closest('main')")


def test_a_missing_page_is_the_studios_own_with_a_way_back(page, live_server_url, alice):
    log_in(page, live_server_url, "alice")
    response = page.goto(f"{live_server_url}/jobs/00000000-0000-0000-0000-000000000000/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.locator(".main-nav")).to_be_attached()  # the studio's header, styled
    page.get_by_role("button", name="Go to your home page").click()
    expect(page).to_have_url(f"{live_server_url}/")


def test_the_studio_has_a_favicon(page, live_server_url, alice):
    page.goto(f"{live_server_url}/login/")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    response = page.request.get(f"{live_server_url}{href}")
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.body().startswith(b"<svg")
