"""Runs side by side (issue 18): the compare service, the Compare page, its API,
and the jobs list's Compare form."""

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from jobs.compare_views import MAX_DRAWN
from jobs.models import FineTuneJob
from jobs.services.compare import CompareError, Point, compare, thinned
from serving.models import Evaluation
from tests.builders import finished_job, log_losses, make_job, ready_sample
from usage.models import DevicePrice, DeviceUse

pytestmark = pytest.mark.django_db


def logged_run(owner, dataset, name: str, learning_rate: float, train: dict, val: dict):
    """A finished job with these losses logged and the last ones as its final metrics."""
    job = finished_job(owner, dataset, name=name, training={"learning_rate": learning_rate})
    log_losses(job, train, val)
    final = {"train_loss": train[max(train)], "val_loss": val[max(val)]}
    FineTuneJob.objects.filter(pk=job.pk).update(final_metrics=final)
    job.refresh_from_db()
    return job


@pytest.fixture
def slow(alice, routing):
    return logged_run(alice, routing, "Slow", 0.0002, {10: 2.0, 20: 1.5, 30: 1.2}, {30: 1.4})


@pytest.fixture
def fast(alice, routing):
    return logged_run(alice, routing, "Fast", 0.002, {10: 1.8, 20: 1.1, 30: 0.9}, {30: 1.0})


def refusal(user, ids) -> CompareError:
    with pytest.raises(CompareError) as refused:
        compare(user, ids)
    return refused.value


# --- the service ---------------------------------------------------------------------------


def test_it_keeps_only_the_fields_that_differ(alice, slow, fast):
    comparison = compare(alice, [f"{slow.pk},{fast.pk}"])
    assert [run.job for run in comparison.runs] == [slow, fast]
    differing = {d.field: d.values for d in comparison.differences}
    # The names differ too; the dataset, the model and every other setting do not.
    assert differing == {"name": ["Slow", "Fast"], "training.learning_rate": [0.0002, 0.002]}


def test_it_returns_each_runs_curves_by_step(alice, slow, fast):
    comparison = compare(alice, [str(slow.pk), str(fast.pk)])
    first = comparison.runs[0]
    assert [(p.step, p.loss, p.tokens, p.elapsed) for p in first.train] == [
        (10, 2.0, 1000, 10.0), (20, 1.5, 2000, 20.0), (30, 1.2, 3000, 30.0),
    ]  # fmt: skip
    assert [(p.step, p.loss) for p in first.validation] == [(30, 1.4)]
    assert first.figures["val_loss"] == 1.4


def test_the_dataset_is_a_compared_field(alice, routing, slow):
    other = ready_sample(alice)
    job = finished_job(alice, other, name="Slow", training={"learning_rate": 0.0002})
    found = {d.field: d for d in compare(alice, [slow.pk, job.pk]).differences}
    # A second job named "Slow" is renamed when created: the name differs too.
    assert found.keys() == {"data.dataset", "name"}
    difference = found["data.dataset"]
    rows = f"{slow.plan['rows']:,} rows"
    assert difference.values[0] == f"{routing.name} [{str(routing.pk)[:8]}], revision 1 ({rows})"
    assert difference.values[1].startswith(f"{other.name} [{str(other.pk)[:8]}], revision 1 (")


def test_a_newer_revision_of_the_same_dataset_is_a_difference(alice, routing, slow):
    # A job keeps the revision it was created from ...
    assert slow.dataset_revision == routing.revision == 1
    # ... and Again was created after the dataset was edited and validated again.
    again = logged_run(alice, routing, "Again", 0.0002, {10: 2.0}, {10: 2.1})
    FineTuneJob.objects.filter(pk=again.pk).update(dataset_revision=2)
    found = {d.field: d.values for d in compare(alice, [slow.pk, again.pk]).differences}
    assert [value.split(", ")[1].split(" (")[0] for value in found["data.dataset"]] == [
        "revision 1",
        "revision 2",
    ]


def evaluated(job, exact_match: float, answers: dict):
    """A succeeded evaluation of `job`: its fine-tune's figures and {prompt: answer}."""
    return Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=len(answers), status="succeeded",
        finished_at=timezone.now(),
        results={
            "base": {"exact_match": 0.0, "val_loss": 6.2},
            "fine_tuned": {"exact_match": exact_match, "val_loss": 1.0 - exact_match / 2},
            "rows": 200, "sample_size": len(answers),
            "samples": [
                {"prompt": prompt, "reference": "billing", "base": "?", "base_exact": False,
                 "fine_tuned": answer, "fine_tuned_exact": answer == "billing"}
                for prompt, answer in answers.items()
            ],
        },
    )  # fmt: skip


def test_evaluations_and_their_answers_are_set_side_by_side(alice, slow, fast):
    # An older evaluation of Slow is passed over for its newest one.
    older = evaluated(slow, 0.1, {"Refund?": "shipping"})
    Evaluation.objects.filter(pk=older.pk).update(finished_at=timezone.now() - timedelta(days=1))
    evaluated(slow, 0.5, {"Refund?": "shipping", "Invoice?": "billing", "Only slow?": "x"})
    evaluated(fast, 0.75, {"Invoice?": "billing", "Refund?": "billing"})
    comparison = compare(alice, [slow.pk, fast.pk])
    assert [run.evaluation_figures["exact_match"] for run in comparison.runs] == [0.5, 0.75]
    from jobs.services.compare import samples

    rows = samples(comparison.runs)
    # Prompts both answered, in the first evaluation's order; "Only slow?" is not side by side.
    assert [(r.prompt, r.answers) for r in rows] == [
        ("Refund?", [("shipping", False), ("billing", True)]),
        ("Invoice?", [("billing", True), ("billing", True)]),
    ]


def test_the_best_run_is_the_best_evaluated_one_else_the_lowest_validation_loss(
    alice, routing, slow, fast
):
    from jobs.services.compare import best

    running = make_job(alice, routing, name="Running")
    FineTuneJob.objects.filter(pk=running.pk).update(status="running", val_loss=0.1)
    # Fast's validation loss (1.0) is lower than Slow's (1.4); a running job is not a winner.
    found = best(compare(alice, [slow.pk, fast.pk, running.pk]).runs)
    assert (found.run.job, found.figure, found.value) == (fast, "val_loss", 1.0)
    # Held-out figures decide before the loss does.
    evaluated(slow, 0.8, {"Refund?": "billing"})
    evaluated(fast, 0.6, {"Refund?": "billing"})
    found = best(compare(alice, [slow.pk, fast.pk, running.pk]).runs)
    assert (found.run.job, found.figure, found.value) == (slow, "exact_match", 0.8)


def test_device_time_and_cost_are_figures_where_a_price_is_set(alice, slow, fast):
    start = timezone.now() - timedelta(hours=2)
    for job, hours in ((slow, 1.5), (fast, 0.5)):
        DeviceUse.objects.create(
            owner=alice, job=job, job_name=job.name, attempt=1, worker="train@here",
            device="cpu", price_per_hour=Decimal("2"), started_at=start,
            last_seen_at=start + timedelta(hours=hours), seconds=hours * 3600,
        )  # fmt: skip
    DevicePrice.objects.create(device="cpu", price_per_hour=Decimal("2"))
    runs = compare(alice, [slow.pk, fast.pk]).runs
    assert [run.figures["device_seconds"] for run in runs] == [5400.0, 1800.0]
    assert [run.figures["cost"] for run in runs] == [3.0, 1.0]


def test_a_long_curve_is_thinned_for_drawing_and_keeps_its_spike():
    points = [Point(step, 2.0 - step / 10_000, step * 100, float(step)) for step in range(1, 5001)]
    points[2500] = Point(2501, 9.0, 250_100, 2501.0)
    kept = thinned(points, MAX_DRAWN)
    assert len(kept) <= MAX_DRAWN
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert points[2500] in kept
    assert [p.step for p in kept] == sorted(p.step for p in kept)
    assert thinned(points[:50], MAX_DRAWN) == points[:50]


def test_a_foreign_id_is_refused_like_a_missing_one(alice, bob, routing, slow):
    bobs = make_job(bob, ready_sample(bob))
    with pytest.raises(Http404) as foreign:
        compare(alice, [f"{slow.pk},{bobs.pk}"])
    with pytest.raises(Http404) as missing:
        compare(alice, [f"{slow.pk},{uuid.uuid4()}"])
    assert str(foreign.value) == str(missing.value) == "No such job."


def test_staff_compare_anyones_jobs(olga, slow, fast):
    assert len(compare(olga, [slow.pk, fast.pk]).runs) == 2


def test_one_id_is_refused_with_the_sentence(alice, slow):
    refused = refusal(alice, [str(slow.pk)])
    assert (refused.code, refused.message) == (
        "too_few", "Choose at least 2 jobs to compare; 1 was given."
    )  # fmt: skip


def test_seven_ids_are_refused_with_the_sentence(alice):
    refused = refusal(alice, [",".join(str(uuid.uuid4()) for _ in range(7))])
    assert (refused.code, refused.message) == (
        "too_many", "Compare at most 6 jobs at once; 7 were given."
    )  # fmt: skip


def test_a_malformed_id_is_refused_with_the_sentence(alice, slow):
    refused = refusal(alice, [str(slow.pk), "not-a-job"])
    assert (refused.code, refused.message) == (
        "malformed", "“not-a-job” is not a job id (a UUID)."
    )  # fmt: skip


def test_a_job_named_twice_is_refused_with_the_sentence(alice, slow):
    refused = refusal(alice, [str(slow.pk), slow.pk.hex])
    assert (refused.code, refused.message) == (
        "duplicate", f"Job {slow.pk} is named twice; name each job once."
    )  # fmt: skip


# --- the page ------------------------------------------------------------------------------


def test_the_page_overlays_both_curves_and_highlights_the_learning_rate(alice_client, slow, fast):
    response = alice_client.get(reverse("jobs-compare"), {"ids": f"{slow.pk},{fast.pk}"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="legend-entry"') == 2
    drawn = json.loads(html.split('id="compare-data" type="application/json">')[1].split("<")[0])
    assert [run["name"] for run in drawn["runs"]] == ["Slow", "Fast"]
    assert drawn["runs"][1]["train"] == [[10, 1.8, 1000, 10.0], [20, 1.1, 2000, 20.0],
                                          [30, 0.9, 3000, 30.0]]  # fmt: skip
    assert drawn["runs"][1]["validation"] == [[30, 1.0, 3000, 30.0]]
    assert (drawn["x"], drawn["log"]) == ("step", False)
    assert [run["active"] for run in drawn["runs"]] == [False, False]
    assert '<tr class="differs" data-field="training.learning_rate">' in html
    row = html.split('data-field="training.learning_rate">')[1].split("</tr>")[0]
    assert "<td>0.0002</td>" in row and "<td>0.002</td>" in row
    # Fast's losses are lower: marked the best of their rows.
    figures = html.split('data-figure="val_loss">')[1].split("</tr>")[0]
    assert '<td class="figure">1.4000</td>' in figures
    assert '<td class="figure best">1.0000 <span class="best-mark"' in figures
    assert f'href="/playground/?job={fast.pk}"' in html
    best = html.split('data-testid="compare-best">')[1].split("</p>")[0]
    assert "Best: <strong>Fast</strong>, validation loss 1.0000." in best
    assert f'<a role="button" href="/playground/?job={fast.pk}">Open the best' in best
    assert f'href="/jobs/new/?from={slow.pk}"' in html


def test_the_view_is_in_the_address(alice_client, slow, fast):
    url = reverse("jobs-compare")
    html = alice_client.get(url, {"ids": f"{slow.pk},{fast.pk}", "x": "tokens", "log": "1"})
    html = html.content.decode()
    assert '<input type="radio" name="x" value="tokens" checked>' in html
    assert '<input type="checkbox" name="log" value="1" role="switch" checked>' in html
    assert '"x": "tokens", "log": true' in html
    # Anything else reads as the default view.
    html = alice_client.get(url, {"ids": f"{slow.pk},{fast.pk}", "x": "<b>"}).content.decode()
    assert '<input type="radio" name="x" value="step" checked>' in html


def test_the_page_sets_evaluations_and_answers_side_by_side(alice_client, slow, fast):
    url, ids = reverse("jobs-compare"), {"ids": f"{slow.pk},{fast.pk}"}
    assert 'data-testid="no-evaluations"' in alice_client.get(url, ids).content.decode()
    evaluated(slow, 0.5, {"Refund?": "shipping"})
    evaluated(fast, 0.75, {"Refund?": "billing"})
    html = alice_client.get(url, ids).content.decode()
    exact = html.split('id="compare-evaluations"')[1].split('data-figure="exact_match">')[1]
    exact = exact.split("</tr>")[0]
    assert '<td class="figure">50.0 %</td>' in exact
    assert '<td class="figure best">75.0 % <span class="best-mark"' in exact
    row = html.split('data-testid="sample-row">')[1].split("</tr>")[0]
    assert "Refund?" in row and "Reference: billing" in row
    assert "<td>shipping</td>" in row and 'billing <span class="sample-exact"' in row


def test_the_page_reads_repeated_ids_as_the_list_form_sends_them(alice_client, slow, fast):
    response = alice_client.get(reverse("jobs-compare"), {"ids": [slow.pk, fast.pk]})
    assert response.status_code == 200


def test_the_page_refuses_one_job_with_the_sentence(alice_client, slow):
    response = alice_client.get(reverse("jobs-compare"), {"ids": slow.pk})
    assert response.status_code == 400
    assert "Choose at least 2 jobs to compare; 1 was given." in response.content.decode()


def test_another_users_job_is_a_404_on_the_page(bob_client, slow, fast):
    response = bob_client.get(reverse("jobs-compare"), {"ids": f"{slow.pk},{fast.pk}"})
    assert response.status_code == 404


def test_the_page_refreshes_while_a_job_runs_and_not_after(alice_client, alice, routing, slow):
    running = make_job(alice, routing, name="Running")
    FineTuneJob.objects.filter(pk=running.pk).update(status="running")
    url = reverse("jobs-compare")
    ids = {"ids": f"{slow.pk},{running.pk}"}
    assert 'hx-trigger="every 10s"' in alice_client.get(url, ids).content.decode()
    fragment = alice_client.get(url, ids, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="compare-live"') and "<h1>" not in fragment
    FineTuneJob.objects.filter(pk=running.pk).update(status="succeeded")
    assert "hx-trigger" not in alice_client.get(url, ids, HTTP_HX_REQUEST="true").content.decode()


def test_the_jobs_list_has_a_compare_form_and_a_box_per_job(alice_client, slow, fast):
    html = alice_client.get(reverse("jobs")).content.decode()
    assert (
        '<form class="compare-form" id="compare-form" method="get" action="/jobs/compare/">' in html
    )
    for job in (slow, fast):
        assert f'name="ids" value="{job.pk}" form="compare-form"' in html


# --- the API -------------------------------------------------------------------------------


def test_the_api_answers_the_same_comparison(alice_api, slow, fast):
    response = alice_api.get("/api/v1/jobs/compare/", {"ids": f"{slow.pk},{fast.pk}"})
    assert response.status_code == 200
    body = response.json()
    assert [run["name"] for run in body["runs"]] == ["Slow", "Fast"]
    assert body["runs"][1]["train"][0] == {"step": 10, "loss": 1.8, "tokens": 1000, "elapsed": 10.0}
    assert body["runs"][1]["validation"] == [
        {"step": 30, "loss": 1.0, "tokens": 3000, "elapsed": 30.0}
    ]
    assert body["runs"][0]["dataset"]["id"] == str(slow.dataset_id)
    assert body["runs"][0]["dataset"]["revision"] == 1
    assert body["runs"][0]["evaluation"] is None and body["samples"] == []
    assert body["differences"] == [
        {"field": "name", "values": ["Slow", "Fast"]},
        {"field": "training.learning_rate", "values": [0.0002, 0.002]},
    ]


def test_the_api_sets_evaluations_side_by_side(alice_api, slow, fast):
    evaluated(slow, 0.5, {"Refund?": "shipping", "Only slow?": "x"})
    evaluated(fast, 0.75, {"Refund?": "billing"})
    body = alice_api.get("/api/v1/jobs/compare/", {"ids": f"{slow.pk},{fast.pk}"}).json()
    assert body["runs"][1]["evaluation"] == {
        "exact_match": 0.75, "val_loss": 0.625, "rows": 200,
    }  # fmt: skip
    assert body["samples"] == [
        {
            "prompt": "Refund?",
            "reference": "billing",
            "answers": [
                {"answer": "shipping", "exact": False},
                {"answer": "billing", "exact": True},
            ],
        }
    ]


def test_the_api_refuses_bad_ids_in_its_error_shape(alice_api, slow):
    response = alice_api.get("/api/v1/jobs/compare/", {"ids": f"{slow.pk},{slow.pk}"})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "duplicate",
            "message": f"ids: Job {slow.pk} is named twice; name each job once.",
            "field": "ids",
        }
    }


def test_the_api_answers_another_users_jobs_like_missing_ones(bob_api, slow, fast):
    foreign = bob_api.get("/api/v1/jobs/compare/", {"ids": f"{slow.pk},{fast.pk}"})
    missing = bob_api.get("/api/v1/jobs/compare/", {"ids": f"{uuid.uuid4()},{uuid.uuid4()}"})
    assert foreign.status_code == missing.status_code == 404
    assert (
        foreign.json()
        == missing.json()
        == {"error": {"code": "not_found", "message": "No such job."}}
    )
