"""Every page of the studio, at a desktop's 1280 px and a phone's 390 px, in
Chromium: no sideways scrolling, no console error, and no serious or critical
accessibility violation by axe-core (through axe-playwright-python), and no
heading that skips a level.

Each page's screenshot at each width is written to
test-artifacts/screenshots/ by every run, so a reviewer can look at the
studio without running it. No worker: the objects are written as the
services and the ledger leave them. Django's admin is the operators' issue's.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from datasets_app.services import create_dataset, run_validation
from jobs.models import FineTuneJob, JobStatus
from jobs.services import ledger, sweep_space, sweeps
from jobs.services.drafts import check_start_job
from serving.models import Evaluation
from studio.services.tokens import create_token
from tests.builders import chat_jsonl, finished_job, make_job, ready_sample, upload
from tests.processes import ARTIFACTS, fits_the_screen, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

SCREENSHOTS = Path(ARTIFACTS) / "screenshots"
SERIOUS = {"serious", "critical"}
# Rules axe rates "moderate" that the studio holds to all the same: a page
# whose headings skip a level reads wrongly to a screen reader's outline.
ALSO = {"heading-order", "page-has-heading-one", "landmark-one-main"}
AXE = Axe()


@dataclass(frozen=True)
class Stop:
    name: str  # the screenshot's
    path: str
    ready: str  # a selector that shows the page has drawn what it fetches


def a_studio_in_use(owner) -> dict[str, str]:
    """One of everything an analyst's pages show; returns their ids."""
    dataset = ready_sample(owner)
    broken = create_dataset(
        owner, upload=upload("broken.jsonl", chat_jsonl(3) + b'{"messages": [}\n'), name="Broken"
    )
    run_validation(str(broken.pk), broken.revision)

    done = finished_job(owner, dataset, name="Routing, quick")
    FineTuneJob.objects.filter(pk=done.pk).update(
        current_step=75, total_steps=75, train_loss=1.84, val_loss=1.9,
        final_metrics={"train_loss": 1.84, "val_loss": 1.9, "runtime_seconds": 294.2,
                       "steps": 75, "trained_tokens": 54692},
    )  # fmt: skip
    Evaluation.objects.create(
        job=done, trigger="automatic", sample_size=2, status="succeeded",
        finished_at=timezone.now(),
        results={"base": {"exact_match": 0.0, "rouge_l": 0.21},
                 "fine_tuned": {"exact_match": 0.5, "rouge_l": 0.93}, "rows": 2,
                 "sample_size": 2,
                 "samples": [{"prompt": "Where is my sofa?", "reference": "shipping",
                              "base": "the the", "fine_tuned": "shipping",
                              "base_exact": False, "fine_tuned_exact": True}]},
    )  # fmt: skip

    running = make_job(owner, dataset, name="Routing, running")
    FineTuneJob.objects.filter(pk=running.pk).update(status=JobStatus.QUEUED)
    run = ledger.claim(running.pk, "train@pages")
    ledger.record_start(running.pk, run.attempt, total_steps=40, resumed_from_step=0)
    for step in range(1, 9):
        ledger.record_metric(running.pk, run.attempt, {
            "step": step, "epoch": step / 40, "train_loss": 3 - step / 10, "val_loss": None,
            "tokens_per_second": 800.0, "tokens": step * 256, "elapsed": step * 1.5,
            "eta": (40 - step) * 1.5, "total_steps": 40,
        })  # fmt: skip

    failed = make_job(owner, dataset, name="Routing, failed")
    FineTuneJob.objects.filter(pk=failed.pk).update(
        status=JobStatus.FAILED, error_code="out_of_memory", finished_at=timezone.now(),
        error_message="Training ran out of memory at step 3.",
    )  # fmt: skip
    create_token(owner, "nightly pipeline")
    return {"dataset": dataset.pk, "broken": broken.pk, "done": done.pk,
            "running": running.pk, "failed": failed.pk, "sweep": a_sweep(owner, dataset).pk}  # fmt: skip


def a_sweep(owner, dataset):
    """A running sweep: one run ended with its loss, one queued."""
    document = {"data": {"dataset": str(dataset.pk)}, "model": {"base_model": "tailor-tiny"}}
    draft = check_start_job(owner, document)
    spec = {"parameters": {"learning_rate": {"values": [1e-3, 3e-3]}, "lora_rank": {"values": [8]}},
            "budget": 3, "sampler": "random", "parallel": 2}  # fmt: skip
    sweep = sweeps.create_sweep(owner, draft, sweep_space.read_sweep(spec, task=draft.model.task))
    first = sweep.trials.order_by("number").first()
    FineTuneJob.objects.filter(pk=first.job_id).update(
        status=JobStatus.SUCCEEDED, best_val_loss=1.72, finished_at=timezone.now()
    )
    sweeps.advance(sweep.pk)
    return sweep


def stops(ids: dict) -> list[Stop]:
    return [
        Stop("home", "/", "[data-testid=next-step]"),
        Stop("datasets", "/datasets/", "main h1"),
        Stop("dataset", f"/datasets/{ids['dataset']}/", "main h1"),
        Stop("dataset-invalid", f"/datasets/{ids['broken']}/", "main h1"),
        Stop("jobs", "/jobs/", "#jobs-table"),
        Stop("job-new", f"/jobs/new/?dataset={ids['dataset']}", "main h1"),
        Stop("job-running", f"/jobs/{ids['running']}/", "#loss-chart"),
        Stop("job-succeeded", f"/jobs/{ids['done']}/", "[data-testid=job-evaluation]"),
        Stop("job-failed", f"/jobs/{ids['failed']}/", "main h1"),
        Stop(
            "compare", f"/jobs/compare/?ids={ids['done']},{ids['running']}", "#compare-chart canvas"
        ),
        Stop("merge", "/jobs/merge/", "main h1"),
        Stop("preference-dataset", "/playground/preference-dataset/", "main h1"),
        Stop("sweeps", "/sweeps/", "main h1"),
        Stop("sweep", f"/sweeps/{ids['sweep']}/", "#sweep-leaderboard"),
        Stop("models", "/models/", "main h1"),
        Stop("playground", f"/playground/?job={ids['done']}", "main h1"),
        Stop("tokens", "/tokens/", "main h1"),
        Stop("password", "/account/password/", "main h1"),
        Stop("not-found", "/jobs/00000000-0000-0000-0000-000000000000/", "main h1"),
    ]


def problems_of(page, stop: Stop, width: int, errors: list[str]) -> list[str]:
    page.wait_for_load_state("networkidle")
    expect(page.locator(stop.ready).first).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{stop.name}-{width}.png"), full_page=True)
    found = [f"{stop.name} at {width} px: console error: {e}" for e in errors]
    if not fits_the_screen(page):
        wide = page.evaluate("document.documentElement.scrollWidth")
        found.append(f"{stop.name} at {width} px: {wide} px wide, scrolls sideways")
    for violation in AXE.run(page).response["violations"]:
        if violation["impact"] in SERIOUS or violation["id"] in ALSO:
            where = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
            found.append(
                f"{stop.name} at {width} px: {violation['impact']} {violation['id']} "
                f"({violation['help']}) at {where}"
            )
    return found


def tour(browser, url: str, username: str, route: list[Stop], width: int) -> list[str]:
    """Log in as `username` and visit every stop: the problems found on the way."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{url}/login/")
        found = problems_of(page, Stop("login", "/login/", "main h1, main h2"), width, [])
        log_in(page, url, username)
        expect(page.get_by_role("heading", name=f"Welcome, {username}")).to_be_visible()
        for stop in route:
            errors.clear()
            page.goto(f"{url}{stop.path}")
            # The not-found page answers 404, which Chromium logs as a console error.
            seen = [e for e in errors if "404" not in e] if stop.name == "not-found" else errors
            found += problems_of(page, stop, width, seen)
    finally:
        context.close()
    return found


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_fits_reads_and_passes_the_accessibility_audit(
    browser, live_server_url, alice, width
):
    found = tour(browser, live_server_url, "alice", stops(a_studio_in_use(alice)), width)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("width", [1280, 390])
def test_every_operators_page_does_too(browser, live_server_url, alice, olga, width):
    """The operators' pages, with alice's work in the studio (not Django's admin)."""
    a_studio_in_use(alice)
    route = [
        Stop("operator-home", "/", "#system-status table"),
        Stop("ops", "/ops/", "main h1"),
        Stop("ops-audit", "/ops/audit/", "main h1"),
        Stop("operator-jobs", "/jobs/", "#jobs-table"),
    ]
    found = tour(browser, live_server_url, "olga", route, width)
    assert not found, "\n".join(found)
