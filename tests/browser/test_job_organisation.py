"""In Chromium, on a phone (390 px): two jobs tagged on their pages, the jobs
list filtered by a tag (the filter in the address, to share), and a job
starred with the keyboard. No worker: the jobs wait, created."""

import re

import pytest
from playwright.sync_api import expect

from tests.builders import make_job, ready_sample
from tests.processes import fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def tag(phone, base: str, job, tags: str) -> None:
    phone.goto(f"{base}/jobs/{job.pk}/")
    phone.get_by_text("Edit tags and note").click()
    phone.get_by_role("textbox", name="Tags").fill(tags)
    phone.get_by_test_id("save-organisation").click()
    expect(phone.get_by_test_id("organise-saved")).to_be_visible()


def test_two_jobs_tagged_filtered_by_tag_and_one_starred_by_keyboard(phone, live_server_url,
                                                                     alice):  # fmt: skip
    dataset = ready_sample(alice)
    first = make_job(alice, dataset, name="Learning rate 2e-4, the baseline of a long series")
    second = make_job(alice, dataset, name="Learning rate 1e-3")
    untagged = make_job(alice, dataset, name="Untagged")
    log_in(phone, live_server_url, "alice")

    tag(phone, live_server_url, first, "baseline, learning-rate sweep")
    expect(phone.locator("#job-organise").get_by_test_id("tag-chip")).to_have_text(
        ["baseline", "learning-rate sweep"]
    )
    tag(phone, live_server_url, second, "learning-rate sweep")
    # A tag the rules refuse: its sentence by the field, and nothing kept.
    phone.get_by_role("textbox", name="Tags").fill("learning-rate sweep, 50%")
    phone.get_by_test_id("save-organisation").click()
    expect(phone.locator('.field-error[data-field="tags"]')).to_have_text(
        "Tags: “50%” has “%”; a tag holds letters, digits, spaces, hyphens (-), "
        "underscores (_) and full stops (.) only."
    )
    assert fits_the_screen(phone)

    phone.goto(f"{live_server_url}/jobs/")
    expect(phone.locator("#jobs-table")).to_have_attribute("data-live", "connected")
    phone.get_by_label("Tag", exact=True).select_option("learning-rate sweep")
    expect(phone.locator(f"#job-{untagged.pk}")).to_have_count(0)
    expect(phone.locator("#jobs-table tr[data-status]")).to_have_count(2)
    expect(phone).to_have_url(re.compile(r"/jobs/\?tag=learning-rate\+sweep$"))
    expect(phone.locator("#jobs-table")).to_have_attribute("data-live", "connected")

    star = phone.get_by_role("button", name=f"Star {second.name}")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.focus()
    phone.keyboard.press("Enter")
    expect(star).to_have_attribute("aria-pressed", "true")
    # The swap keeps the focus on the star (htmx, by its id), for the next key.
    expect(star).to_be_focused()
    phone.keyboard.press("Space")
    expect(star).to_have_attribute("aria-pressed", "false")
    expect(star).to_be_focused()
    phone.keyboard.press("Enter")
    expect(star).to_have_attribute("aria-pressed", "true")
    assert fits_the_screen(phone)

    # The address is the filter: opened again, the list is as it was left.
    phone.reload()
    expect(phone.locator("#jobs-table tr[data-status]")).to_have_count(2)
    phone.get_by_label("Starred only").check()
    expect(phone.locator("#jobs-table tr[data-status]")).to_have_count(1)
    expect(phone.locator(f"#job-{second.pk}")).to_be_visible()
    phone.get_by_label("Group by dataset").check()
    expect(phone.get_by_role("heading", name=f"{dataset.name} · 1 job")).to_be_visible()
    assert fits_the_screen(phone)
