"""In Chromium: upload a good and a bad dataset and read what the page shows."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.builders import chat_jsonl
from tests.processes import log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_good_file_is_validated_live_and_previewed(
    page, live_server_url, celery_worker, alice, tmp_path
):
    good = tmp_path / "numbers.jsonl"
    good.write_bytes(chat_jsonl(200))
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/")
    expect(page.get_by_text("No datasets yet")).to_be_visible()

    page.locator("input[name=file]").set_input_files(str(good))
    expect(page.locator("[data-file-name]")).to_contain_text("numbers.jsonl")
    page.get_by_role("button", name="Upload and check").click()

    expect(page).to_have_url(re.compile(r"/datasets/[0-9a-f-]{36}/$"))
    # The report replaces the live progress when the worker finishes.
    expect(page.get_by_test_id("dataset-status")).to_have_text("Ready", timeout=30_000)
    expect(page.get_by_test_id("dataset-format")).to_have_text("Chat (messages)")
    expect(page.get_by_test_id("dataset-rows")).to_have_text("200")
    expect(page.get_by_test_id("dataset-split")).to_have_text("180 / 20")
    expect(page.locator("#length-chart canvas")).to_be_visible()
    expect(page.locator(".preview-row").first.locator(".bubble-user")).to_contain_text(
        "What comes after 0?"
    )

    page.get_by_role("button", name="Next →").click()
    expect(page.locator(".pager")).to_contain_text("Page 2 of 10")
    expect(page.locator(".preview-row").first.locator(".bubble-user")).to_contain_text(
        "What comes after 20?"
    )


def test_a_bad_file_lists_each_problem_with_its_line(
    page, live_server_url, celery_worker, alice, tmp_path
):
    bad = tmp_path / "broken.jsonl"
    bad.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "2+2?", "completion": "4"}),
                json.dumps({"prompt": "3+3?", "completion": 6}),
                "{not json",
            ]
        )
    )
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/")
    page.locator("input[name=file]").set_input_files(str(bad))
    page.get_by_role("button", name="Upload and check").click()

    expect(page.get_by_test_id("dataset-status")).to_have_text("Invalid", timeout=30_000)
    errors = page.locator("#dataset-errors")
    expect(errors).to_contain_text("2 problems found — nothing was imported.")
    rows = errors.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("completion")
    expect(rows.nth(0).locator("td").first).to_have_text("2")
    expect(rows.nth(1).locator("td").first).to_have_text("3")
    expect(rows.nth(1)).to_contain_text("not valid JSON")


def test_a_few_broken_rows_are_skipped_from_the_keyboard(
    page, live_server_url, celery_worker, alice, tmp_path
):
    lines = chat_jsonl(40).decode().splitlines()
    lines[4] = "{not json"
    lines[9] = json.dumps({"messages": 3})
    mostly_good = tmp_path / "mostly-good.jsonl"
    mostly_good.write_text("\n".join(lines) + "\n")
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/")
    page.locator("input[name=file]").set_input_files(str(mostly_good))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_test_id("dataset-status")).to_have_text("Invalid", timeout=30_000)

    skip = page.get_by_role("button", name="Skip 2 broken rows and use the rest")
    skip.focus()
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    # htmx swaps in the new check's live progress; its end brings the report.
    expect(page.get_by_test_id("dataset-status")).to_have_text("Ready", timeout=30_000)
    expect(page.get_by_test_id("dataset-rows")).to_have_text("38")
    expect(page.get_by_test_id("dataset-skipped-rows")).to_have_text("2 broken skipped")
    skipped = page.locator("#dataset-skipped tbody tr")
    expect(skipped).to_have_count(2)
    expect(skipped.nth(0).locator("td").first).to_have_text("5")
    expect(skipped.nth(1).locator("td").first).to_have_text("10")


def test_a_file_with_an_unknown_extension_is_refused_in_the_form(
    page, live_server_url, alice, tmp_path
):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/")
    page.locator("input[name=file]").set_input_files(str(notes))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.locator(".field-error")).to_have_text(
        "'notes.txt' has no recognised extension; use .jsonl, .json, .csv, .tsv or .parquet."
    )
    expect(page).to_have_url(f"{live_server_url}/datasets/")
