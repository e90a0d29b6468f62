"""The playground page, its votes and a job's evaluation panel, over HTTP.

Real database; the jobs are rows as the ledger leaves them (no worker runs
here: generation and evaluation themselves are tested with a real worker)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from serving.models import Evaluation, Generation, GenerationSource, GenerationStatus
from serving.services import generations
from serving.services.generations import GenerationRequest, check_request
from tests.builders import finished_job, make_job, ready_sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_model(alice, demo_models):
    return finished_job(alice, ready_sample(alice), name="Routing, quick")


def test_the_playground_starts_on_the_newest_fine_tuned_model_with_its_base(
    alice_client, alices_model
):
    page = alice_client.get(reverse("playground")).content.decode()
    assert "Routing, quick" in page
    assert (
        f'value="{alices_model.fine_tuned_model}" data-testid="choose-{alices_model.id}" checked'
        in page
    )
    assert 'value="tailor-tiny" data-testid="choose-tailor-tiny" checked' in page


def test_a_job_link_preselects_that_job(alice_client, alice, alices_model):
    older = finished_job(alice, ready_sample(alice), name="Older run")
    page = alice_client.get(reverse("playground") + f"?job={older.pk}").content.decode()
    assert f'data-testid="choose-{older.id}" checked' in page
    assert f'data-testid="choose-{alices_model.id}" checked' not in page


def test_bob_does_not_see_alices_models_and_her_job_link_selects_nothing(bob_client, alices_model):
    page = bob_client.get(reverse("playground") + f"?job={alices_model.pk}").content.decode()
    assert alices_model.fine_tuned_model not in page
    assert "Nothing fine-tuned yet" in page


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get(reverse("playground"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_recent_prompts_are_offered_again(alice_client, alice, alices_model):
    checked = check_request(
        alice,
        GenerationRequest(
            models=["tailor-tiny"],
            messages=[{"role": "system", "content": "Route it."},
                      {"role": "user", "content": "My invoice is wrong"}],
        ),
    )  # fmt: skip
    generation = generations.create_generation(alice, checked, source=GenerationSource.PLAYGROUND)
    page = alice_client.get(reverse("playground")).content.decode()
    assert f'data-recent="{generation.pk}"' in page
    assert "My invoice is wrong" in page and "Route it." in page


def finished_comparison(owner, job) -> Generation:
    checked = check_request(
        owner,
        GenerationRequest(
            models=["tailor-tiny", job.fine_tuned_model],
            messages=[{"role": "user", "content": "hi"}],
        ),
    )
    generation = generations.create_generation(owner, checked, source=GenerationSource.PLAYGROUND)
    Generation.objects.filter(pk=generation.pk).update(status=GenerationStatus.SUCCEEDED)
    return generation


def test_a_vote_answers_with_the_tallies(alice_client, alice, alices_model):
    generation = finished_comparison(alice, alices_model)
    response = alice_client.post(
        reverse("playground-vote", args=[generation.pk]),
        {"model_a": "tailor-tiny", "model_b": alices_model.fine_tuned_model, "choice": "b"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "Vote recorded: B is better (Routing, quick). To change it, choose another answer." in page
    )
    # As shown: the base (the left pane) on the left, the fine-tuned model's win on the right.
    assert (
        '<span class="tally-count tally-name-right small-text" data-testid="tally-right-wins">1 win</span>'
        in page
    )


def test_a_bad_vote_is_refused_with_its_reason(alice_client, alice, alices_model):
    generation = finished_comparison(alice, alices_model)
    response = alice_client.post(
        reverse("playground-vote", args=[generation.pk]),
        {"model_a": "tailor-tiny", "model_b": alices_model.fine_tuned_model, "choice": "maybe"},
    )
    assert response.status_code == 422
    assert "Choose A, B or tie." in response.content.decode()


def test_bob_cannot_vote_on_alices_comparison(bob_client, alice, alices_model):
    generation = finished_comparison(alice, alices_model)
    response = bob_client.post(
        reverse("playground-vote", args=[generation.pk]),
        {"model_a": "tailor-tiny", "model_b": alices_model.fine_tuned_model, "choice": "a"},
    )
    assert response.status_code == 404


# --- evaluation panel -------------------------------------------------------------------


def test_a_finished_evaluation_shows_base_against_fine_tuned(alice_client, alices_model):
    Evaluation.objects.create(
        job=alices_model, trigger="automatic", sample_size=2, status="succeeded",
        finished_at=timezone.now(),
        results={
            "base": {"exact_match": 0.0, "rouge_l": 0.05, "val_loss": 6.2, "perplexity": 492.7},
            "fine_tuned": {"exact_match": 0.9, "rouge_l": 0.93, "val_loss": 0.4,
                           "perplexity": 1.49},
            "rows": 1250, "sample_size": 2,
            "samples": [
                {"prompt": "Where is my sofa?", "reference": "shipping", "base": "the the",
                 "fine_tuned": "shipping", "base_exact": False, "fine_tuned_exact": True},
                {"prompt": "Refund please", "reference": "billing", "base": "",
                 "fine_tuned": "account", "base_exact": False, "fine_tuned_exact": False},
            ],
        },
    )  # fmt: skip
    page = alice_client.get(reverse("job-evaluation", args=[alices_model.pk])).content.decode()
    # Each card: its label, then its value, never run together.
    assert (
        '<span class="muted small-text">Exact match, base</span><strong class="figure" '
        'data-testid="evaluation-base-headline" data-value="0.0">0.0 %</strong>'
    ) in page
    assert (
        '<span class="muted small-text">Exact match, fine-tuned</span><strong class="figure" '
        'data-testid="evaluation-tuned-headline" data-value="0.9">90.0 %</strong>'
    ) in page
    assert (
        '<span class="muted small-text">Rows</span>'
        '<strong class="figure" data-testid="evaluation-rows">1,250</strong>'
        '<span class="muted small-text" data-testid="evaluation-rows-note">'
        "2 of them generated from, per model</span>"
    ) in page
    # The table: rates as percentages (changes in points), losses to 4 decimals.
    assert '<td class="figure" data-testid="metric-exact_match">90.0 %</td>' in page
    assert '<td class="figure" data-testid="metric-rouge_l">93.0 %</td>' in page
    assert '<td class="figure" data-testid="metric-val_loss">0.4000</td>' in page
    assert '<td class="figure" data-testid="metric-perplexity">1.49</td>' in page
    assert '<td class="figure change-up">+90.0 pts</td>' in page  # exact match went up
    assert '<td class="figure change-up">-5.8000</td>' in page  # the loss went down: better
    assert '<td class="figure change-up">-491.21</td>' in page  # perplexity too
    assert "Where is my sofa?" in page and "(empty)" in page
    assert "hx-trigger" not in page  # finished: no more polling


def test_a_running_evaluation_polls_and_shows_its_progress(alice_client, alices_model):
    Evaluation.objects.create(
        job=alices_model, trigger="automatic", sample_size=50, status="running", done=20, total=80
    )
    page = alice_client.get(reverse("job-evaluation", args=[alices_model.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert "Evaluating: 20 of 80…" in page


def test_a_job_without_success_cannot_be_evaluated(alice_client, alice, demo_models):
    job = make_job(alice, ready_sample(alice))
    response = alice_client.post(
        reverse("job-evaluate", args=[job.pk]), {"sample_size": "10"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "Only a job that has succeeded can be evaluated." in response.content.decode()
    assert not Evaluation.objects.exists()


def test_a_sample_size_out_of_range_is_refused(alice_client, alices_model):
    response = alice_client.post(
        reverse("job-evaluate", args=[alices_model.pk]), {"sample_size": "0"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 422
    page = response.content.decode()
    assert "The number of rows must be at least 1 and at most 500." in page
    assert "sample_size" not in page.replace('name="sample_size"', "")


def test_bob_cannot_see_or_start_alices_evaluation(bob_client, alices_model):
    assert bob_client.get(reverse("job-evaluation", args=[alices_model.pk])).status_code == 404
    response = bob_client.post(reverse("job-evaluate", args=[alices_model.pk]))
    assert response.status_code == 404
    assert not Evaluation.objects.exists()
