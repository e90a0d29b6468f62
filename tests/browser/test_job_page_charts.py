"""In Chromium: the bar charts static/js/charts.js draws (a dataset's row
lengths, labels and turns), which the job pages' charts go with, are named
by what they show and tick their rows axis at whole numbers only."""

import re

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

NAME = re.compile(
    r"^Chart of [\w ]+: [\d,]+ rows? in [\d,]+ bars?; the tallest, .+, has [\d,]+ rows?\.$"
)


def test_a_datasets_charts_have_names_and_whole_row_ticks(page, live_server_url, alice):
    dataset = ready_sample(alice)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/datasets/{dataset.pk}/")
    charts = page.locator("[data-chart]")
    expect(charts.first.locator("canvas")).to_be_visible()
    assert charts.count() >= 2
    for chart in charts.all():
        expect(chart).to_have_attribute("role", "img")
        expect(chart).to_have_attribute("aria-label", NAME)
        ticks = chart.get_attribute("data-row-ticks").split()
        assert ticks and all(re.fullmatch(r"\d[\d,]*", tick) for tick in ticks), ticks
