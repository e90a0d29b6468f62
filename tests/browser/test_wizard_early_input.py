"""In Chromium: a choice made in the wizard before its scripts are ready (a
slow page, a quick hand) is not lost: once htmx has set the page up, the
wizard asks for the preview that choice needed."""

import pytest
from playwright.sync_api import expect

from tests.builders import ready_sample
from tests.processes import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def test_a_dataset_chosen_before_htmx_is_ready_still_draws_the_models(page, live_server_url, alice):
    dataset = ready_sample(alice)
    log_in(page, live_server_url, "alice")
    held = []

    def hold(route):  # htmx waits until the test lets it go
        held.append(route)

    page.route("**/htmx-2.min.js", hold)
    previews = []  # which previews the page asked for, to say so if none came
    page.on("request", lambda request: "preview" in request.url and previews.append(request.url))
    page.goto(f"{live_server_url}/jobs/new/", wait_until="commit")
    page.locator("#id_data-dataset").select_option(str(dataset.pk))
    expect(page.get_by_test_id("model-tailor-tiny")).to_have_count(0)

    page.wait_for_function("() => true")  # let the held request reach the handler
    assert held, "the page asked for htmx"
    for route in held:
        route.continue_()
    page.wait_for_function("() => window.htmx !== undefined", timeout=15_000)
    page.wait_for_load_state("domcontentloaded")
    # A loaded CI machine answers the first preview of a fresh server slowly.
    try:
        expect(page.get_by_test_id("model-tailor-tiny")).to_be_visible(timeout=15_000)
    except AssertionError:
        raise AssertionError(f"no models drawn; previews asked: {previews}") from None
    page.get_by_test_id("model-tailor-tiny").click()
    expect(page.get_by_test_id("estimate-steps")).to_have_text("75")
