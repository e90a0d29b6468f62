"""In Chromium: what users write (a dataset's name and rows, a job's name and
its failure, a model's answer) is shown as text on every page that shows it,
never run as markup (issue 13).

Each object carries PAYLOAD: a script element, an image whose error handler
runs script, a javascript: link and an attribute break-out. On each page the
test asserts that no dialog opened and no handler set the payload's global
flag, that none of the payload's elements exists in the DOM (the
Content-Security-Policy would stop the script of one that did, so the DOM is
what shows an escaping mistake), and that the payload's text is there to read.

No worker runs: the objects are made through the services, with the rows a
finished job or evaluation leaves written directly, and the model's answer
comes over the playground's socket as the inference worker would send it.
"""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from playwright.sync_api import expect

from datasets_app import services
from datasets_app.models import Dataset
from jobs.models import FineTuneJob, JobEvent, JobStatus
from jobs.services import live
from serving.models import Evaluation, Generation, GenerationSource
from serving.services import generations
from serving.services.generations import GenerationRequest
from studio.events import publish
from tests.builders import make_job
from tests.processes import log_in, paused_workers, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]

PAYLOAD = (
    "<script>__xss='script';alert(1)</script>"
    "<img src=x onerror=\"__xss='img';alert(2)\">"
    "<a href=\"javascript:__xss='link';alert(3)\">go</a>"
    "\"'><svg onload=\"__xss='svg';alert(4)\">"
)
# What the payload would have put in the DOM, had it been parsed as markup.
INJECTED = """() => ({
    images: document.querySelectorAll('img[src="x"], img[onerror]').length,
    svgs: document.querySelectorAll('svg[onload]').length,
    links: document.querySelectorAll('a[href^="javascript:"]').length,
    scripts: Array.from(document.scripts)
        .filter(s => !s.type || /javascript|module/.test(s.type))  // not json_script's data
        .filter(s => s.text.includes('__xss')).length,
})"""
NOTHING = {"images": 0, "svgs": 0, "links": 0, "scripts": 0}


@pytest.fixture
def watched(page):
    """The page, with every dialog it opens recorded (and dismissed)."""
    page.dialogs = []

    def record(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return page


def assert_inert(page, shown=PAYLOAD, where="body"):
    """Nothing of the payload ran or became markup, and its text is on the page."""
    expect(page.locator(where).first).to_contain_text(shown, use_inner_text=True)
    assert page.evaluate("() => window.__xss") is None
    assert page.evaluate(INJECTED) == NOTHING
    assert page.dialogs == []


def visit(page, url: str, shown=PAYLOAD, where="body"):
    page.goto(url)
    assert_inert(page, shown, where)


# --- objects carrying the payload -------------------------------------------------------------


def validated(owner, filename: str, content: bytes) -> Dataset:
    """A dataset named PAYLOAD from `content`, validated here (or by a worker
    that took the message first)."""
    dataset = services.create_dataset(
        owner, upload=SimpleUploadedFile(filename, content), name=PAYLOAD
    )
    services.run_validation(str(dataset.pk), dataset.revision)
    return wait_for(
        lambda: Dataset.objects.filter(pk=dataset.pk, status__in=("ready", "invalid")).first(),
        60,
        "the dataset's validation",
    )


def chat_rows(rows: int) -> bytes:
    turn = [{"role": "user", "content": PAYLOAD}, {"role": "assistant", "content": PAYLOAD}]
    return "".join(json.dumps({"messages": turn}) + "\n" for _ in range(rows)).encode()


def label_rows(rows: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    for i in range(rows):
        writer.writerow([PAYLOAD, PAYLOAD if i % 2 else "fine"])
    return buffer.getvalue().encode()


def broken_rows() -> bytes:
    """Chat rows, one with a role no format knows: its error quotes the role."""
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    bad = {"messages": [{"role": PAYLOAD, "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    return "".join(json.dumps(row) + "\n" for row in [good] * 10 + [bad]).encode()


def ended_job(owner, dataset, status: str, **fields) -> FineTuneJob:
    """A job named PAYLOAD, as the ledger leaves one that ended with `status`."""
    job = make_job(owner, dataset, name=PAYLOAD)
    if status == JobStatus.SUCCEEDED:  # its adapter recorded where the runner writes it
        fields.setdefault("adapter_path", str(job.folder / "adapter"))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=status, finished_at=timezone.now(), **fields
    )
    return FineTuneJob.objects.get(pk=job.pk)


# --- the pages --------------------------------------------------------------------------------


def test_a_dataset_is_shown_as_text_on_every_page_of_it(watched, live_server_url, alice):
    chat = validated(alice, "chat.jsonl", chat_rows(30))
    labels = validated(alice, "labels.csv", label_rows(30))
    broken = validated(alice, "broken.jsonl", broken_rows())
    assert (chat.status, labels.status, broken.status) == ("ready", "ready", "invalid")
    log_in(watched, live_server_url, "alice")

    visit(watched, f"{live_server_url}/datasets/")
    # The name, the rows in the preview (both sides of the chat), the labels.
    visit(watched, f"{live_server_url}/datasets/{chat.pk}/")
    expect(watched.locator(".preview-row .bubble-user").first).to_contain_text(PAYLOAD)
    expect(watched.locator(".preview-row .bubble-assistant").first).to_contain_text(PAYLOAD)
    assert watched.locator("input[name=name]").first.input_value() == PAYLOAD
    visit(watched, f"{live_server_url}/datasets/{chat.pk}/preview/?page=2")
    visit(watched, f"{live_server_url}/datasets/{labels.pk}/")
    # The report quotes the role it refuses (its start: a sentence quotes 60 characters).
    visit(watched, f"{live_server_url}/datasets/{broken.pk}/", shown=PAYLOAD[:40])
    # The new-job wizard offers the dataset by name.
    watched.goto(f"{live_server_url}/jobs/new/?dataset={chat.pk}")
    assert_inert(watched, shown="", where="body")
    chosen = watched.locator("#id_data-dataset option:checked")
    assert chosen.text_content().strip().startswith(PAYLOAD)


def test_a_job_and_its_failure_are_shown_as_text(watched, live_server_url, alice, olga, browser):
    dataset = validated(alice, "chat.jsonl", chat_rows(30))
    job = ended_job(
        alice, dataset, JobStatus.FAILED,
        error_code="training_error", error_message=PAYLOAD, error_traceback=PAYLOAD,
    )  # fmt: skip
    JobEvent.objects.create(job=job, kind="log", level="error", message=PAYLOAD)
    log_in(watched, live_server_url, "alice")

    visit(watched, f"{live_server_url}/jobs/")
    visit(watched, f"{live_server_url}/jobs/{job.pk}/")
    expect(watched.locator("h1")).to_have_text(PAYLOAD)
    expect(watched.locator("#job-error")).to_contain_text(PAYLOAD)
    expect(watched.locator("#job-log")).to_contain_text(PAYLOAD)
    # An event that arrives live is written into the log as text too.
    expect(watched.locator("#job-live")).to_have_attribute("data-live", "connected")
    event = JobEvent.objects.create(job=job, kind="log", message="live: " + PAYLOAD)
    live.publish_event(event).result(5)
    expect(watched.locator(f'[data-event-id="{event.pk}"]')).to_contain_text("live: " + PAYLOAD)
    assert_inert(watched)
    # The job's row as the list fetches it when its socket hears of a new job.
    visit(watched, f"{live_server_url}/jobs/{job.pk}/row/")

    # Staff see the traceback as well, as text.
    context = browser.new_context()
    staff = context.new_page()
    staff.dialogs = []
    staff.on("dialog", lambda dialog: (staff.dialogs.append(dialog.message), dialog.dismiss()))
    log_in(staff, live_server_url, "olga")
    visit(staff, f"{live_server_url}/jobs/{job.pk}/")
    staff.get_by_text("Traceback (operators only)").click()
    expect(staff.locator("pre.traceback")).to_have_text(PAYLOAD)
    assert_inert(staff)
    context.close()


def test_a_model_answer_is_shown_as_text_in_the_playground_and_the_evaluation(
    watched, live_server_url, alice
):
    dataset = validated(alice, "chat.jsonl", chat_rows(30))
    job = ended_job(alice, dataset, JobStatus.SUCCEEDED)
    Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=1, status="succeeded",
        finished_at=timezone.now(),
        results={
            "base": {"exact_match": 0.0}, "fine_tuned": {"exact_match": 1.0},
            "rows": 1, "sample_size": 1,
            "samples": [{"prompt": PAYLOAD, "reference": PAYLOAD, "base": PAYLOAD,
                         "fine_tuned": PAYLOAD, "base_exact": False,
                         "fine_tuned_exact": True}],
        },
    )  # fmt: skip
    asked = generations.create_generation(
        alice,
        generations.check_request(
            alice, GenerationRequest(models=["tailor-tiny"],
                                     messages=[{"role": "user", "content": PAYLOAD}]),
        ),
        source=GenerationSource.PLAYGROUND,
    )  # fmt: skip
    log_in(watched, live_server_url, "alice")

    # The evaluation's samples, on the job's page.
    watched.goto(f"{live_server_url}/jobs/{job.pk}/")
    watched.get_by_text("Sample by sample").click()
    assert_inert(watched, where="#job-evaluation")

    # The playground: the job by name, the earlier prompt, then an answer.
    visit(watched, f"{live_server_url}/playground/")
    expect(watched.locator(f'[data-recent="{asked.pk}"]')).to_contain_text(PAYLOAD[:80])
    # No inference worker may answer first: the answer is the one sent below.
    with paused_workers({"infer"}):
        watched.get_by_test_id("playground-prompt").fill(PAYLOAD)
        watched.get_by_test_id("playground-run").click()
        generation = wait_for(
            lambda: Generation.objects.exclude(pk=asked.pk).first(), 30, "the playground's run"
        )
        expect(watched.get_by_test_id("pane-0")).to_be_visible()
        group = generations.generation_group(generation.pk)
        sent = {"seq": 1, "id": str(generation.pk)}
        publish(group, {"type": "generation.started", **sent}).result(5)
        texts = [PAYLOAD] * len(generation.panes)
        publish(group, {"type": "generation.progress", **sent, "seq": 2, "texts": texts}).result(5)
        results = [
            {"model": pane["model"], "label": pane["label"], "text": PAYLOAD, "error": None,
             "prompt_tokens": 3, "completion_tokens": 5, "finish_reason": "stop",
             "first_token_seconds": 0.1, "seconds": 0.5, "tokens_per_second": 10.0}
            for pane in generation.panes
        ]  # fmt: skip
        results[0] = {**results[0], "text": None, "error": PAYLOAD}
        publish(group, {"type": "generation.done", **sent, "seq": 3, "status": "succeeded",
                        "error": None, "results": results}).result(5)  # fmt: skip
        expect(watched.get_by_test_id("pane-0")).to_contain_text(PAYLOAD)
        for index in range(1, len(generation.panes)):
            expect(watched.get_by_test_id(f"pane-text-{index}")).to_have_text(PAYLOAD)
        assert_inert(watched, where="#panes")
