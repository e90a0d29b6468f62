"""Jobs that report to an experiment tracker (jobs/training/trackers.py), for real.

`run_job` trains tailor-tiny in this process, as the Celery task would, with
the trackers offline: MLflow into a file store, W&B in its offline mode.
What was logged is read back with each library's own reader (MLflow's
client; the records of W&B's run file). An unreachable tracker is a closed
port on this machine: the job succeeds and its log says why the tracker was
set aside.
"""

import pytest

from jobs import worker
from jobs.models import FineTuneJob, JobStatus
from jobs.services.lifecycle import check_start_job, create_job
from studio.redis_server import free_port
from tests.trackers import wandb_run_records

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]

SHORT = {"max_steps": 4, "batch_size": 8, "logging_steps": 1}


def queued_job(owner, dataset, tracking: dict, *, name="routing on tiny", method="lora"):
    document = {
        "name": name,
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": method},
        "training": SHORT,
        "tracking": tracking,
    }
    job = create_job(owner, check_start_job(owner, document), start=False)
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return job


def log_of(job) -> list[tuple[str, str]]:
    return list(job.events.filter(kind="log").values_list("level", "message"))


def test_a_job_logs_its_metrics_parameters_and_adapter_to_an_mlflow_file_store(
    alice, routing, settings, tmp_path, monkeypatch, client
):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this test's client

    store = f"file://{tmp_path}/mlruns"
    settings.TAILOR_MLFLOW_TRACKING_URI = store
    job = queued_job(alice, routing, {"mlflow_experiment": "routing", "mlflow_run_name": "lr-3e-3"})

    assert worker.run_job(str(job.pk), "here") == "succeeded"

    assert ("info", "Reporting to MLflow (experiment routing)") in log_of(job)
    assert [message for level, message in log_of(job) if level == "warning"] == []
    mlflow = MlflowClient(tracking_uri=store)
    experiment = mlflow.get_experiment_by_name("routing")
    [run] = mlflow.search_runs([experiment.experiment_id])
    assert (run.info.run_name, run.info.status) == ("lr-3e-3", "FINISHED")
    losses = mlflow.get_metric_history(run.info.run_id, "loss")
    assert [point.step for point in losses] == [1, 2, 3, 4]
    assert all(point.value > 0 for point in losses)
    assert float(run.data.params["learning_rate"]) == job.config["training"]["learning_rate"]
    assert run.data.params["max_steps"] == "4"
    adapter = {entry.path for entry in mlflow.list_artifacts(run.info.run_id, "adapter")}
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors",
            "adapter/tailor_config.json"} <= adapter  # fmt: skip

    # The job page says where the run is reported.
    client.force_login(alice)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Reports to MLflow experiment <code>routing</code>" in page


def test_an_unreachable_mlflow_server_leaves_a_warning_and_the_job_succeeds(
    alice, routing, settings
):
    # A closed port on this machine: connections are refused at once.
    settings.TAILOR_MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    settings.TAILOR_TRACKER_TIMEOUT_S = 2
    job = queued_job(alice, routing, {"mlflow_experiment": "routing"})

    assert worker.run_job(str(job.pk), "here") == "succeeded"

    warnings = [message for level, message in log_of(job) if level == "warning"]
    assert warnings == [
        "MLflow could not start its run (MlflowException); the job goes on without it, "
        "and its metrics stay here."
    ]
    job.refresh_from_db()
    assert job.final_metrics["train_loss"] > 0


def test_an_unreachable_wandb_server_leaves_a_warning_and_the_job_succeeds(
    alice, routing, settings
):
    settings.TAILOR_WANDB_MODE = "online"
    settings.TAILOR_WANDB_BASE_URL = f"http://127.0.0.1:{free_port()}"
    settings.TAILOR_WANDB_API_KEY = "k" * 40  # any key: nothing answers there
    settings.TAILOR_TRACKER_TIMEOUT_S = 2
    job = queued_job(alice, routing, {"wandb_project": "routing"})

    assert worker.run_job(str(job.pk), "here") == "succeeded"

    assert [message for level, message in log_of(job) if level == "warning"] == [
        "W&B could not start its run (CommError); the job goes on without it, and its "
        "metrics stay here."
    ]


def test_a_tracker_the_studio_has_not_configured_is_a_warning_not_a_failure(
    alice, routing, settings
):
    settings.TAILOR_MLFLOW_TRACKING_URI = ""
    settings.TAILOR_WANDB_MODE = "disabled"
    job = queued_job(alice, routing, {"mlflow_experiment": "routing", "wandb_project": "routing"})

    assert worker.run_job(str(job.pk), "here") == "succeeded"

    assert [message for level, message in log_of(job) if level == "warning"] == [
        "W&B is turned off on this studio (an operator sets TAILOR_WANDB_MODE); "
        "the job trains without it.",
        "MLflow has no tracking address on this studio (an operator sets "
        "TAILOR_MLFLOW_TRACKING_URI); the job trains without it.",
    ]
    assert not any(message.startswith("Reporting to") for _, message in log_of(job))


# QLoRA too: W&B's integration saves the final (4-bit based) model itself.
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_a_job_logs_its_metrics_config_and_adapter_to_an_offline_wandb_run(
    alice, routing, settings, method
):
    settings.TAILOR_WANDB_MODE = "offline"
    job = queued_job(
        alice, routing, {"wandb_project": "routing", "wandb_name": "lr-3e-3",
                         "wandb_tags": ["tiny", "lora"]}, method=method,
    )  # fmt: skip

    assert worker.run_job(str(job.pk), "here") == "succeeded"

    assert ("info", "Reporting to W&B (project routing, offline)") in log_of(job)
    assert [message for level, message in log_of(job) if level == "warning"] == []
    run = wandb_run_records(job.folder / "attempt-1" / "wandb")
    assert (run.project, run.name, run.tags) == ("routing", "lr-3e-3", ["tiny", "lora"])
    assert [row["train/global_step"] for row in run.history if "train/loss" in row] == [1, 2, 3, 4]
    assert all(row["train/loss"] > 0 for row in run.history if "train/loss" in row)
    assert run.config["tailor"]["training"]["max_steps"] == 4
    assert run.config["learning_rate"] == job.config["training"]["learning_rate"]
    [model] = [a for a in run.artifacts if a.type == "model" and "final_model" in a.aliases]
    assert "adapter_model.safetensors" in model.files
    assert run.exit_code == 0
