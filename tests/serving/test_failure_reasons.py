"""A failed generation, evaluation or fine-tuning job as its owner and as an
operator see it.

Everyone reads a plain sentence (serving/errors.py): the job page's
evaluation panel, the native API, the playground's socket and /v1/. Only
staff are shown the exception behind it, where a Python class or a server
path may show. The failures are real: this process answers as the inference
worker does (`serving.worker`), while the session's workers of its queues
wait. /v1/'s 503s and stream error events are in test_openai_api.py, with a
real worker.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils.html import escape

from jobs.models import FineTuneJob, JobStatus
from serving import worker
from serving.models import Evaluation, EvaluationTrigger, Generation
from serving.services import evaluations
from studio.asgi import application
from studio.services.tokens import create_token
from tests.builders import api_client, finished_job, make_job, ready_sample
from tests.live import run_in_own_loop
from tests.processes import paused_workers

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the run's lease keeper has its own connection
    pytest.mark.usefixtures("demo_models"),
]

WORKER_ERROR = (
    "The inference worker stopped with an unexpected error. Ask again; if it happens "
    "again, tell an operator: they can see the error."
)
EVALUATION_ERROR = (
    "The inference worker stopped with an unexpected error. Request the evaluation again; "
    "if it happens again, tell an operator: they can see the error on this job's page."
)
MODEL_MISSING = "The base model could not be loaded: its files are missing."


@pytest.fixture(autouse=True)
def this_process_is_the_inference_worker():
    """The session's infer and evaluate workers (when started) wait, so that
    the request is answered here; what they find queued afterwards is taken
    already."""
    with paused_workers({"infer", "evaluate"}):
        yield


def socket_for(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/playground/")
    communicator.scope["user"] = user
    communicator.scope["headers"] = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
    return communicator


def played(user, models: list[str], *, before_answering=None) -> dict:
    """Run a prompt in the playground's socket as `user`, answer it here as the
    worker would (after `before_answering(generation_id)`), and return the
    socket's `done` message."""

    async def scenario():
        socket = socket_for(user)
        assert (await socket.connect(timeout=10))[0]
        await socket.send_json_to({"action": "run", "models": models, "prompt": "Hello"})
        queued = await socket.receive_json_from(timeout=10)
        assert queued["type"] == "queued", queued
        if before_answering is not None:
            await database_sync_to_async(before_answering)(queued["id"])
        answered = await database_sync_to_async(worker.run_generation)(queued["id"], "here")
        assert answered in ("succeeded", "failed"), answered
        while (message := await socket.receive_json_from(timeout=30))["type"] != "done":
            pass
        await socket.disconnect()
        return message

    return run_in_own_loop(scenario)


def generation_api(user, generation_id) -> dict:
    response = api_client(user).get(f"/api/v1/generations/{generation_id}/")
    assert response.status_code == 200
    return response.json()


def test_an_unexpected_error_in_a_generation_is_a_plain_sentence_and_its_exception_is_for_staff(
    alice, olga
):
    # A row written by another version, with a parameter this engine does not
    # take: an error nobody foresaw.
    def stored_with_an_unknown_parameter(generation_id):
        generation = Generation.objects.get(pk=generation_id)
        generation.params = {**generation.params, "beam_width": 4}
        generation.save(update_fields=["params"])

    exception = "TypeError: GenerationParams.__init__() got an unexpected keyword argument"
    for user in (alice, olga):
        done = played(user, ["tailor-tiny"], before_answering=stored_with_an_unknown_parameter)
        assert (done["status"], done["error"], done["results"]) == ("failed", WORKER_ERROR, [])
        stored = Generation.objects.get(pk=done["id"])
        assert stored.error == WORKER_ERROR
        assert stored.error_detail.startswith(exception)
        answer = generation_api(user, done["id"])
        assert answer["error"] == WORKER_ERROR
        if user.is_staff:
            assert done["error_detail"] == stored.error_detail
            assert answer["error_detail"] == stored.error_detail
        else:
            assert "error_detail" not in done and "error_detail" not in answer
            for text in (json.dumps(done), json.dumps(answer)):
                assert "TypeError" not in text and "GenerationParams" not in text

    # An operator reads anyone's generation, with the exception.
    alices = Generation.objects.get(owner=alice)
    assert generation_api(olga, alices.pk)["error_detail"] == alices.error_detail


@pytest.mark.training  # the worker imports torch to load the model
def test_a_model_whose_files_are_missing_fails_its_pane_and_only_staff_see_the_folder(alice, olga):
    job = finished_job(alice, ready_sample(alice), name="Full, files deleted")
    FineTuneJob.objects.filter(pk=job.pk).update(method="full")
    missing = str(job.folder / "adapter")

    for user in (alice, olga):  # an operator may run anyone's model
        done = played(user, [job.fine_tuned_model])
        assert done["status"] == "succeeded"  # a pane fails alone
        [pane] = done["results"]
        assert (pane["finish_reason"], pane["error"]) == ("error", MODEL_MISSING)
        [shown] = generation_api(user, done["id"])["results"]
        assert shown["error"] == MODEL_MISSING
        if user.is_staff:
            assert pane["error_detail"] == shown["error_detail"]
            assert shown["error_detail"] == f"there is no model folder at {missing}"
        else:
            assert "error_detail" not in pane and "error_detail" not in shown
            assert missing not in json.dumps(done)
            assert missing not in json.dumps(generation_api(user, done["id"]))


def test_an_unexpected_error_in_an_evaluation_is_a_plain_sentence_and_its_exception_is_for_staff(
    alice, olga
):
    job = finished_job(alice, ready_sample(alice))
    evaluation = evaluations.request_evaluation(job, trigger=EvaluationTrigger.MANUAL)
    # The job's folder was cleaned after the evaluation was asked for.
    job.validation_file.unlink()
    assert worker.run_evaluation(str(evaluation.pk), "here") == "failed"
    evaluation = Evaluation.objects.get(pk=evaluation.pk)
    assert evaluation.error == EVALUATION_ERROR
    assert evaluation.error_detail.startswith("FileNotFoundError: ")
    path = str(job.validation_file)
    assert path in evaluation.error_detail

    def what_they_read(user) -> dict[str, str]:
        browser = Client()
        browser.force_login(user)
        panel = browser.get(f"/jobs/{job.pk}/evaluation/")
        assert panel.status_code == 200
        api = api_client(user)
        return {
            "page": panel.content.decode(),
            "api": api.get(f"/api/v1/evaluations/{evaluation.pk}/").json(),
            "api list": api.get(f"/api/v1/evaluations/?job={job.pk}").json()["results"][0],
        }

    seen = what_they_read(alice)
    assert escape(f"The evaluation failed: {EVALUATION_ERROR}") in seen["page"]
    assert seen["api"]["error"] == seen["api list"]["error"] == EVALUATION_ERROR
    assert "error_detail" not in seen["api"] and "error_detail" not in seen["api list"]
    for where, shown in seen.items():
        text = shown if isinstance(shown, str) else json.dumps(shown)
        assert path not in text and "FileNotFoundError" not in text, where
    assert "operators only" not in seen["page"]

    staff = what_they_read(olga)
    assert escape(EVALUATION_ERROR) in staff["page"]
    assert "The error (operators only)" in staff["page"]
    assert escape(evaluation.error_detail) in staff["page"]
    assert staff["api"]["error"] == EVALUATION_ERROR
    assert staff["api"]["error_detail"] == staff["api list"]["error_detail"]
    assert staff["api"]["error_detail"] == evaluation.error_detail


def test_a_failed_fine_tuning_job_shows_its_traceback_to_staff_only(alice, olga):
    job = make_job(alice, ready_sample(alice))
    traceback = (
        "Traceback (most recent call last):\n"
        f'  File "{job.folder}/attempt-1/run.py", line 1\n'
        "ConfigError: training.unknown_knob: is not a known field."
    )
    unsaid = make_job(alice, ready_sample(alice))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error_code="training",
        error_message="Training stopped with an unexpected error in the worker.",
        error_traceback=traceback,
    )  # fmt: skip
    FineTuneJob.objects.filter(pk=unsaid.pk).update(status=JobStatus.FAILED)

    def read(user, path: str) -> dict:
        secret = create_token(user, "openai").secret
        # In a thread of its own: the list view is async, and Playwright's
        # session-wide browser (when browser tests ran first) keeps an event
        # loop in this one, where the test client cannot run it.
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(Client().get, path, HTTP_AUTHORIZATION=f"Bearer {secret}")
            response = call.result(timeout=60)
        assert response.status_code == 200
        return response.json()

    plain = {
        "code": "training",
        "message": "Training stopped with an unexpected error in the worker.",
        "param": None,
    }
    one, many = f"/v1/fine_tuning/jobs/ftjob-{job.pk.hex}", "/v1/fine_tuning/jobs"
    assert read(alice, one)["error"] == plain
    listed = {entry["id"]: entry["error"] for entry in read(alice, many)["data"]}
    assert listed[f"ftjob-{job.pk.hex}"] == plain
    assert listed[f"ftjob-{unsaid.pk.hex}"] == {
        "code": "training_failed",
        "message": "The job failed; no reason was recorded.",
        "param": None,
    }

    assert read(olga, one)["error"] == {**plain, "traceback": traceback}
    listed = {entry["id"]: entry["error"] for entry in read(olga, many)["data"]}
    assert listed[f"ftjob-{job.pk.hex}"] == {**plain, "traceback": traceback}
