"""In Chromium, at 1280 px and at a phone's 390 px: the data report in tokens,
errors that read as sentences, names that stay two lines, the jobs a delete
would touch, and dataset pages that never scroll sideways."""

import json

import pytest
from playwright.sync_api import expect

from datasets_app import services
from tests.builders import checked_upload, make_job, ready_sample, tickets_with_a_long_row
from tests.processes import fits_the_screen, log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LONG_NAME = ("Quarterly support tickets from the help desk, cleaned and deduplicated " * 4)[
    :200
].rstrip()


def test_the_report_shows_lengths_in_tokens_and_the_rows_a_job_will_cut(
    page, live_server_url, alice, demo_models
):
    dataset = checked_upload(alice, tickets_with_a_long_row())
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/{dataset.pk}/")
    expect(page.get_by_test_id("length-cut")).to_have_text(
        "A job on Tailor Tiny (demo, 3.6M) keeps the first 128 tokens of a row by default: "
        "1 row will be cut."
    )
    expect(page.get_by_test_id("length-summary")).to_have_text(
        "(Tailor Tiny (demo, 3.6M)’s tokenizer; median 70, 95th percentile 71, longest 3,905)"
    )
    expect(page.locator("#dataset-warnings li")).to_have_text(
        "1 row is longer than 128 tokens and will be cut (line 42, 3,905 tokens): a job on "
        "Tailor Tiny (demo, 3.6M) keeps its first 128 tokens by default."
    )
    expect(page.locator("#length-chart canvas")).to_be_visible()


def test_each_error_names_its_line_and_field_once_and_quotes_names_as_code(
    page, live_server_url, alice
):
    rows = tickets_with_a_long_row(long_row=None).decode().splitlines()
    rows[2] = json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": ""}]})  # fmt: skip
    rows[4] = json.dumps({"prompt": "Hi"})
    dataset = checked_upload(alice, ("\n".join(rows) + "\n").encode())
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/{dataset.pk}/")
    errors = page.locator("#dataset-errors tbody tr")
    expect(errors).to_have_count(2)
    first = errors.nth(0).locator("td")
    expect(first.nth(0)).to_have_text("3")
    expect(first.nth(1).locator("code")).to_have_text("messages[1].content")
    expect(first.nth(2)).to_have_text("must not be empty: it is what the model learns to write")
    second = errors.nth(1).locator("td")
    expect(second.nth(2)).to_have_text("missing messages")
    expect(second.nth(2).locator("code")).to_have_text("messages")
    expect(page.locator("#dataset-errors")).not_to_contain_text("`")


def test_a_file_that_is_not_json_shows_its_parse_error_and_offers_no_column_mapping(
    page, live_server_url, alice
):
    records = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(25)]
    text = "[\n" + ",\n".join(json.dumps(record) for record in records) + "\n{oops}\n]\n"
    dataset = checked_upload(alice, text.encode(), name="broken.json")
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/{dataset.pk}/")
    expect(page.get_by_test_id("parse-error")).to_have_text("The file could not be read as JSON.")
    expect(page.locator("#dataset-errors tbody tr td").nth(2)).to_have_text(
        "not valid JSON (Expecting ',' delimiter at line 27, column 1 of the file)"
    )
    settings = page.locator("details.settings-panel")
    expect(settings).not_to_have_attribute("open", "")
    settings.locator("summary").click()
    expect(settings.get_by_text("Column names")).to_have_count(0)
    expect(settings.get_by_label("Format")).to_be_visible()


def test_a_second_dataset_of_the_same_name_is_numbered_and_the_page_says_so(
    page, live_server_url, alice
):
    log_in(page, live_server_url, "alice")
    for _ in range(2):
        page.goto(f"{live_server_url}/datasets/")
        page.get_by_role("button", name="Use “Support ticket routing”").click()
    expect(page.locator("#dataset-name")).to_have_text("Support ticket routing (2)")
    expect(page.get_by_text("You already have a dataset called “Support ticket routing”, so this "
                            "one is called “Support ticket routing (2)”.")).to_be_visible()  # fmt: skip


def test_an_over_long_name_is_refused_at_upload_not_cut(page, live_server_url, alice, tmp_path):
    source = tmp_path / "tickets.jsonl"
    source.write_bytes(tickets_with_a_long_row())
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/")
    page.locator("input[name=file]").set_input_files(str(source))
    page.get_by_text("Name and validation data").click()
    page.locator("#id_name").press_sequentially("n" * 205, delay=0)
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_test_id("name-error")).to_have_text(
        "Ensure this value has at most 200 characters (it has 205)."
    )
    expect(page).to_have_url(f"{live_server_url}/datasets/")


@pytest.mark.parametrize("width", [1366, 390])
def test_a_long_name_takes_two_lines_at_most_and_keeps_its_whole_text_as_title(
    browser, live_server_url, alice, width
):
    dataset = checked_upload(alice, tickets_with_a_long_row(long_row=None), name="t.jsonl")
    services.rename_dataset(dataset, LONG_NAME)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        log_in(page, live_server_url, "alice")
        page.goto(f"{live_server_url}/datasets/{dataset.pk}/")
        heading = page.locator("#dataset-name")
        expect(heading).to_have_attribute("title", LONG_NAME)
        lines = heading.evaluate(
            "h => Math.round(h.getBoundingClientRect().height"
            " / parseFloat(getComputedStyle(h).lineHeight))"
        )
        assert lines <= 2
        assert fits_the_screen(page)
        page.goto(f"{live_server_url}/datasets/")
        expect(page.locator(f"#dataset-{dataset.pk} a.dataset-name")).to_have_attribute(
            "title", LONG_NAME
        )
        assert fits_the_screen(page)
    finally:
        context.close()


def test_the_delete_confirmation_names_the_jobs_that_use_the_dataset(
    page, live_server_url, alice, demo_models
):
    dataset = ready_sample(alice)
    make_job(alice, dataset, name="Routing v1")
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/{dataset.pk}/")
    page.get_by_text("Delete this dataset", exact=True).first.click()
    expect(page.get_by_test_id("jobs-using")).to_have_text(
        "1 job uses this dataset: Routing v1. It keeps its own copy of the rows: it goes on, "
        "and keeps its results and this dataset’s name in its record."
    )
    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Delete this dataset").click()
    expect(page.locator("#dataset-name")).to_have_text("Support ticket routing")
    assert questions == [
        "Delete “Support ticket routing”? 1 job uses it (Routing v1); it keeps its own copy of the "
        "rows and its results. This cannot be undone."
    ]


def test_dataset_pages_fit_a_phone_and_the_upload_form_works_there(
    phone, live_server_url, alice, tmp_path
):
    rows = tickets_with_a_long_row(long_row=None).decode().splitlines()
    rows[2] = json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": ""}]})  # fmt: skip
    invalid = checked_upload(alice, ("\n".join(rows) + "\n").encode(), name="a-file-name-without-any-"
                      "spaces-that-goes-on-and-on-and-on.jsonl")  # fmt: skip
    ready = checked_upload(
        alice, tickets_with_a_long_row(long_row=None), name="tickets.jsonl", skip_invalid_rows=True
    )
    log_in(phone, live_server_url, "alice")
    for dataset in (ready, invalid):
        phone.goto(f"{live_server_url}/datasets/{dataset.pk}/")
        expect(phone.get_by_test_id("dataset-status")).to_be_visible()
        assert fits_the_screen(phone), dataset.status
    # A problem is a card: its cells one under another, the field's label beside it.
    cell = phone.locator("#dataset-errors tbody tr td").nth(1)
    assert cell.evaluate("td => getComputedStyle(td, '::before').content") == '"Field"'

    phone.goto(f"{live_server_url}/datasets/")
    assert fits_the_screen(phone)
    source = tmp_path / "more.jsonl"
    source.write_bytes(tickets_with_a_long_row(long_row=None))
    phone.locator("input[name=file]").set_input_files(str(source))
    expect(phone.locator("[data-file-name]")).to_contain_text("more.jsonl")
    button = phone.get_by_role("button", name="Upload and check")
    button.scroll_into_view_if_needed()
    expect(button).to_be_in_viewport()
    assert fits_the_screen(phone)
    button.click()
    expect(phone.locator("#dataset-name")).to_have_text("more")
    assert fits_the_screen(phone)
