"""In Chromium: the studio's pages work under their Content-Security-Policy.

Each main page is loaded, and used where the policy could break it (htmx
swaps, a form that asks before it is sent, charts, a live websocket, Swagger
UI's Authorize). The test fails on any violation the browser reports: its
console's "Refused to …" lines and the page's securitypolicyviolation events.
No worker: the rows are written as the ledger would leave them.
"""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.models import FineTuneJob, JobStatus
from serving.models import Evaluation, GenerationSource, GenerationStatus
from serving.services import generations
from serving.services.generations import GenerationRequest, check_request
from studio.services.tokens import create_token
from tests.builders import make_job, ready_sample
from tests.processes import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

# Reported as events too, so that a violation the console does not show
# (Chromium logs some only once per page) is still counted.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(`${event.violatedDirective} refused ${event.blockedURI || "inline"}`
                    + ` at ${event.sourceFile || document.location.pathname}:${event.lineNumber}`);
});
"""


class PolicyWatch:
    """Every CSP violation and uncaught script error on the pages a test visits."""

    def __init__(self, page):
        self.page = page
        self.found: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.found.append(f"script error: {error}"))

    def _console(self, message) -> None:
        if "Refused to" in message.text or "Content Security Policy" in message.text:
            self.found.append(f"{self.page.url}: {message.text}")

    def visit(self, url: str) -> None:
        """Collect the violations of the page being left, then open `url`."""
        self.collect()
        response = self.page.goto(url)
        assert response.status == 200, f"{url}: {response.status}"
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy, policy

    def collect(self) -> None:
        if self.page.url.startswith("http"):
            events = self.page.evaluate("window.__csp || []")
            self.found += [f"{self.page.url}: {event}" for event in events]
            self.page.evaluate("window.__csp = []")


def succeeded_job_with_an_evaluation(owner) -> FineTuneJob:
    job = make_job(owner, ready_sample(owner), name="Routing, quick")
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(job.folder / "adapter"),
        current_step=75, train_loss=0.4, val_loss=0.5, finished_at=timezone.now(),
    )  # fmt: skip
    Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=2, status="succeeded",
        finished_at=timezone.now(),
        results={
            "base": {"exact_match": 0.1, "rouge_l": 0.2, "val_loss": 6.2, "perplexity": 492.7,
                     "confusion": [[1, 3], [0, 2]]},
            "fine_tuned": {"exact_match": 0.9, "rouge_l": 0.93, "val_loss": 0.4,
                           "perplexity": 1.49, "confusion": [[4, 0], [1, 1]]},
            "labels": ["billing", "shipping"],
            "rows": 100, "sample_size": 2,
            "samples": [{"prompt": "Where is my sofa?", "reference": "shipping",
                         "base": "the the", "fine_tuned": "shipping",
                         "base_exact": False, "fine_tuned_exact": True}],
        },
    )  # fmt: skip
    job.refresh_from_db()
    return job


def a_vote_between(owner, job: FineTuneJob) -> None:
    checked = check_request(owner, GenerationRequest(
        models=["tailor-tiny", job.fine_tuned_model],
        messages=[{"role": "user", "content": "Where is my parcel?"}],
    ))  # fmt: skip
    generation = generations.create_generation(owner, checked, source=GenerationSource.PLAYGROUND)
    generation.status = GenerationStatus.SUCCEEDED
    generation.save(update_fields=["status"])
    generations.record_vote(owner, generation, "tailor-tiny", job.fine_tuned_model, "a")


def test_every_main_page_works_without_a_policy_violation(page, live_server_url, alice):
    job = succeeded_job_with_an_evaluation(alice)
    dataset_id = job.dataset_id
    a_vote_between(alice, job)
    create_token(alice, "nightly")
    watch = PolicyWatch(page)
    url = live_server_url

    log_in(page, url, "alice")
    expect(page.get_by_role("heading", name="Welcome, alice")).to_be_visible()
    expect(page.get_by_test_id("recent-results")).to_contain_text(job.name)

    watch.visit(f"{url}/datasets/")
    expect(page.locator("input[name=file]")).to_be_attached()
    watch.visit(f"{url}/datasets/{dataset_id}/")
    expect(page.locator("#length-chart canvas")).to_be_visible()

    # Every change posts the form through htmx, its CSRF token taken from the
    # page (the cookie is HttpOnly): the estimate comes back.
    watch.visit(f"{url}/jobs/new/")
    page.locator("#id_data-dataset").select_option(str(dataset_id))
    page.get_by_test_id("model-tailor-tiny").click()
    page.get_by_test_id("preset-quick").click()
    expect(page.get_by_test_id("estimate-steps")).to_have_text("75")

    watch.visit(f"{url}/jobs/")
    expect(page.locator("#jobs-table")).to_have_attribute("data-live", "connected")
    watch.visit(f"{url}/jobs/{job.pk}/")
    expect(page.locator("#job-live")).to_have_attribute("data-live", "connected")
    evaluation = page.get_by_test_id("job-evaluation")
    expect(evaluation.get_by_test_id("evaluation-table")).to_be_visible()
    tuned_bar = evaluation.locator("svg.metric-bar rect.metric-fill-tuned").first
    assert tuned_bar.get_attribute("width") == "90%"
    assert round(tuned_bar.bounding_box()["width"]) > 0
    expect(evaluation.locator("table.confusion td.shade-10")).to_have_count(2)

    watch.visit(f"{url}/playground/")
    tally = page.locator("#vote-tallies svg.tally-bar")
    # The pair as it was shown: the base (left pane, A) on the left, and it won.
    expect(tally.locator("rect.tally-left")).to_have_attribute("width", "100%")
    expect(tally.locator("rect.tally-right")).to_have_attribute("width", "0%")
    watch.visit(f"{url}/models/")

    # The revoke form asks first (data-confirm): Cancel keeps the token.
    watch.visit(f"{url}/tokens/")
    revoke = page.get_by_role("button", name="Revoke")
    page.once("dialog", lambda dialog: dialog.dismiss())
    revoke.click()
    expect(revoke).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    revoke.click()
    expect(page.get_by_role("status")).to_contain_text("Token “nightly” revoked.")

    watch.visit(f"{url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tailor API")
    expect(page.locator(".opblock").first).to_be_visible()
    watch.collect()
    assert watch.found == []


def test_the_browsable_api_allows_inline_styles_but_never_inline_scripts(
    page, live_server_url, alice
):
    job = make_job(alice, ready_sample(alice), name="Routing, quick")
    watch = PolicyWatch(page)
    log_in(page, live_server_url, "alice")
    for path in ("/api/v1/jobs/", f"/api/v1/jobs/{job.pk}/"):
        watch.collect()
        response = page.goto(f"{live_server_url}{path}")
        assert response.status == 200
        policy = dict(
            part.strip().split(" ", 1)
            for part in response.headers["content-security-policy"].split(";")
        )
        assert policy["script-src"] == "'self'"
        assert "'unsafe-inline'" in policy["style-src"]
        expect(page.locator(".response-info")).to_contain_text(str(job.pk))
    watch.collect()
    assert watch.found == []


def test_swagger_ui_uses_a_token_without_keeping_it_in_local_storage(page, live_server_url, alice):
    secret = create_token(alice, "swagger").secret
    watch = PolicyWatch(page)
    watch.visit(f"{live_server_url}/api/docs/")
    page.locator(".swagger-ui .auth-wrapper .authorize").click()
    bearer = page.locator(".swagger-ui .modal-ux .auth-container").filter(has_text="tokenAuth")
    bearer.locator("input").fill(secret)
    bearer.get_by_role("button", name="Apply credentials").click()
    bearer.get_by_role("button", name="Close").click()

    me = page.locator("#operations-v1-v1_me_retrieve")
    me.locator(".opblock-summary").click()
    me.get_by_role("button", name="Try it out").click()
    me.get_by_role("button", name="Execute").click()
    expect(me.locator(".live-responses-table tbody .response-col_status").first).to_have_text(
        re.compile(r"^\s*200")
    )
    expect(me.locator(".live-responses-table .microlight").first).to_contain_text('"alice"')
    assert page.evaluate("Object.keys(window.localStorage)") == []
    watch.collect()
    assert watch.found == []
