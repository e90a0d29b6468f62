"""A DPO job trained on from a supervised job's adapter, evaluated as the
evaluation worker does (serving/worker.py): its preference accuracy on the
held-out pairs beside its parent's, never the bare base's, and the job page
saying so."""

import pytest

from jobs import worker as training_worker
from jobs.models import FineTuneJob
from jobs.services.lifecycle import check_start_job, create_job
from serving import worker
from serving.models import Evaluation, EvaluationTrigger
from serving.services import evaluations
from tests.builders import ready_sample, succeeded_lora_job
from tests.processes import paused_workers

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the run's lease keeper writes from its thread
    pytest.mark.training,
    pytest.mark.usefixtures("demo_models"),
]


def test_a_dpo_job_is_evaluated_against_its_parent(alice, alice_client):
    # This process trains and evaluates: no session worker may take the work.
    with paused_workers({"train", "evaluate"}):
        _train_and_evaluate(alice, alice_client)


def _train_and_evaluate(alice, alice_client):
    parent = succeeded_lora_job(alice)
    pairs = ready_sample(alice, "support-preferences")
    document = {
        "data": {"dataset": str(pairs.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora", "start_from": str(parent.pk)},
        "training": {"max_steps": 3, "batch_size": 8, "logging_steps": 1},
    }
    child = create_job(alice, check_start_job(alice, document), start=False)
    FineTuneJob.objects.filter(pk=child.pk).update(status="queued")
    assert training_worker.run_job(str(child.pk), "here") == "succeeded"
    child.refresh_from_db()
    assert child.objective == "dpo" and child.parent_id == parent.pk
    assert child.metrics.filter(reward_margin__isnull=False).exists()

    Evaluation.objects.filter(job=child).delete()  # the one its success asked for
    evaluation = evaluations.request_evaluation(child, trigger=EvaluationTrigger.MANUAL)
    assert worker.run_evaluation(str(evaluation.pk), "here") == "succeeded"
    evaluation.refresh_from_db()
    results = evaluation.results
    assert results["compared_with"] == "parent"
    assert results["rows"] == pairs.num_validation_rows
    for side in ("base", "fine_tuned"):
        assert 0 <= results[side]["preference_accuracy"] <= 1
    rows = evaluations.metric_rows(evaluation)
    assert [row.key for row in rows] == ["preference_accuracy", "mean_margin"]

    card = alice_client.get(f"/jobs/{child.pk}/evaluation/").content.decode()
    assert "Preference accuracy, parent" in card
    assert "<th>Parent prefers</th>" in card
