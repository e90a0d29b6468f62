"""POST/GET /api/v1/sweeps/ and the sweep pages: the wizard's Sweep, the list,
a sweep's page with its leaderboard; another user gets 404 everywhere."""

import pytest
import yaml
from django.urls import reverse

from jobs.models import FineTuneJob, JobStatus, Sweep
from jobs.services import sweeps
from jobs.sweep_models import SweepStatus, TrialState
from tests.builders import ready_sample

# The runs a sweep queues stay queued: no session worker trains them here.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_training_worker_in_module"),
]


@pytest.fixture
def routing(alice, demo_models):
    return ready_sample(alice)


def sweep_body(dataset, **sweep) -> dict:
    return {
        "dataset": str(dataset.pk), "base_model": "tailor-tiny", "method": "lora",
        "hyperparameters": {"max_steps": 4},
        "sweep": {"parameters": {"lora_rank": {"values": [4, 8, 16]}}, "budget": 3,
                  "sampler": "grid", **sweep},
    }  # fmt: skip


def test_a_script_starts_a_sweep_and_reads_its_leaderboard(alice_api, routing):
    created = alice_api.post("/api/v1/sweeps/", sweep_body(routing), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["status"], body["budget"], body["parallel"], body["metric"]) == (
        "running",
        3,
        2,
        "val_loss",
    )
    assert body["direction"] == "minimize"
    assert body["parameters"] == {"lora_rank": {"values": [4, 8, 16]}}
    assert [row["state"] for row in body["leaderboard"]] == ["running", "running"]
    assert all(row["job_status"] == "queued" for row in body["leaderboard"])
    assert body["progress"] == {"budget": 3, "asked": 2, "ended": 0, "running": 2, "pruned": 0,
                                "percent": 0}  # fmt: skip
    assert body["winner"] is None and body["playground_url"] is None
    read = alice_api.get(f"/api/v1/sweeps/{body['id']}/").json()
    assert read["id"] == body["id"] and len(read["leaderboard"]) == 2
    listed = alice_api.get("/api/v1/sweeps/").json()
    assert [s["id"] for s in listed["results"]] == [body["id"]]


def test_a_bad_sweep_answers_400_naming_its_field_and_creates_nothing(alice_api, routing):
    answer = alice_api.post(
        "/api/v1/sweeps/", sweep_body(routing, parameters={"lora_rank": {"low": 4, "high": 8}}),
        format="json",
    )  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "sweep.parameters.lora_rank"
    assert answer.json()["error"]["message"] == (
        "sweep.parameters.lora_rank: grid search tries listed values: give values, not a range."
    )
    assert not Sweep.objects.exists() and not FineTuneJob.objects.exists()


def test_a_body_without_a_sweep_is_refused(alice_api, routing):
    body = sweep_body(routing)
    del body["sweep"]
    answer = alice_api.post("/api/v1/sweeps/", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "sweep"


def test_another_users_sweep_is_404_and_cancel_stops_the_owners(alice_api, bob_api, routing):
    created = alice_api.post("/api/v1/sweeps/", sweep_body(routing), format="json").json()
    assert bob_api.get(f"/api/v1/sweeps/{created['id']}/").status_code == 404
    assert bob_api.post(f"/api/v1/sweeps/{created['id']}/cancel/").status_code == 404
    assert bob_api.get("/api/v1/sweeps/").json()["results"] == []
    cancelled = alice_api.post(f"/api/v1/sweeps/{created['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    assert set(FineTuneJob.objects.values_list("status", flat=True)) == {JobStatus.CANCELLED}
    again = alice_api.post(f"/api/v1/sweeps/{created['id']}/cancel/")
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "The sweep has already ended (cancelled)."


def test_the_schema_documents_the_sweeps(alice_api):
    schema = yaml.safe_load(alice_api.get("/api/schema/").content)
    assert {"/api/v1/sweeps/", "/api/v1/sweeps/{sweep_id}/"} <= set(schema["paths"])
    assert "SweepCreate" in schema["components"]["schemas"]


# --- pages --------------------------------------------------------------------------------


def wizard_post(dataset, **fields) -> dict:
    return {"data.dataset": str(dataset.pk), "model.base_model": "tailor-tiny",
            "model.method": "lora", "preset": "quick", "training.max_steps": "4", **fields}  # fmt: skip


def test_the_wizard_offers_a_sweep_beside_start(alice_client, routing):
    page = alice_client.get(reverse("job-new"), {"dataset": routing.pk}).content.decode()
    assert 'id="start-sweep"' in page and f'formaction="{reverse("sweep-new")}"' in page
    assert 'name="sweep_param_learning_rate"' in page and 'name="sweep_budget"' in page


def test_the_wizards_sweep_errors_are_shown_by_their_fields(alice_client, routing):
    answer = alice_client.post(reverse("sweep-new"), wizard_post(
        routing, sweep_param_lora_rank="4 .. 8", sweep_param_epochs="x", sweep_budget="0",
        sweep_sampler="grid",
    ))  # fmt: skip
    assert answer.status_code == 422
    errors = answer.context["sweep_form"].errors
    assert errors == {
        "sweep_param_lora_rank": "grid search tries listed values: give values, not a range.",
        "sweep_param_epochs": "must be a number.",
        "sweep_budget": "must be at least 1 and at most 50.",
    }
    page = answer.content.decode()
    assert 'id="id_sweep_param_lora_rank" value="4 .. 8"' in page
    assert '<small class="field-error" id="id_sweep_budget-error">' in page
    assert not Sweep.objects.exists()


def test_the_wizards_sweep_starts_and_its_page_ranks_the_runs(alice_client, bob_client, routing):
    answer = alice_client.post(reverse("sweep-new"), wizard_post(
        routing, sweep_param_lora_rank="4, 8", sweep_budget="2", sweep_sampler="grid",
        sweep_metric="val_loss", sweep_pruner="none",
    ))  # fmt: skip
    sweep = Sweep.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse(
        "sweep-detail", args=[sweep.pk]
    )
    # One run ends with a figure: it leads, the other is still queued.
    first = sweep.trials.get(number=0)
    FineTuneJob.objects.filter(pk=first.job_id).update(
        status=JobStatus.SUCCEEDED, best_val_loss=0.5
    )
    sweeps.advance(sweep.pk)
    page = alice_client.get(reverse("sweep-detail", args=[sweep.pk])).content.decode()
    assert 'hx-trigger="every 3s"' in page
    assert page.index('id="trial-0"') < page.index('id="trial-1"')
    assert "LoRA rank 4" in page and "0.5000" in page
    fragment = alice_client.get(reverse("sweep-detail", args=[sweep.pk]), HTTP_HX_REQUEST="true")
    assert fragment.content.decode().lstrip().startswith('<div id="sweep-board"')
    assert bob_client.get(reverse("sweep-detail", args=[sweep.pk])).status_code == 404
    listing = alice_client.get(reverse("sweeps")).content.decode()
    assert sweep.name in listing and "1 of 2 ended" in listing
    # The second ends: the winner is named, with its YAML and the playground.
    second = sweep.trials.get(number=1)
    FineTuneJob.objects.filter(pk=second.job_id).update(
        status=JobStatus.SUCCEEDED, best_val_loss=0.7
    )
    sweeps.advance(sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.SUCCEEDED and sweep.winner_id == first.job_id
    assert [t.state for t in sweep.trials.all()] == [TrialState.COMPLETE] * 2
    page = alice_client.get(reverse("sweep-detail", args=[sweep.pk])).content.decode()
    assert f'href="{reverse("playground")}?job={first.job_id}"' in page
    assert f'href="{reverse("job-config", args=[first.job_id])}"' in page
    assert 'data-testid="winner-badge"' in page and "every 3s" not in page
