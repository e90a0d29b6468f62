"""Generations, evaluations, exports and validations under faults, with real
workers, Redis, beat, trained adapters and the live studio.

Issue 12's fault tests 10, 11 and 12: the inference worker killed
mid-generation (the playground's socket, the /v1/ stream and the API all
say "worker lost") and the evaluation worker mid-evaluation; an export
killed; a validation killed.
"""

import json
import urllib.request

import pytest
from channels.testing import WebsocketCommunicator

from datasets_app.models import Dataset
from jobs.models import FineTuneJob
from jobs.services.artifacts import request_export
from serving.models import Evaluation, Generation
from serving.services.evaluations import request_evaluation
from serving.work import WORKER_LOST
from studio.asgi import application
from studio.services.tokens import create_token
from tests.builders import api_client, chat_jsonl, succeeded_lora_job, upload
from tests.faults.checks import current
from tests.live import run_in_own_loop
from tests.processes import (
    PRODUCTION_TRAIN,
    Beat,
    CeleryWorker,
    Stopwatch,
    gone,
    kill,
    studio,
    wait_for,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.faults,
]

LONG_ANSWER = {"max_new_tokens": 1024, "temperature": 0.0}


def playground_socket(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/playground/")
    communicator.scope["user"] = user
    communicator.scope["headers"] = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
    return communicator


def running_generation() -> Generation:
    return wait_for(
        lambda: Generation.objects.filter(status="running").first(), 60, "a generation to run"
    )


def test_the_inference_worker_killed_mid_answer_fails_it_as_worker_lost_everywhere(
    alice, demo_models, inference_worker_process, maintenance_worker_process, live_server_url,
    tmp_path, record_property,
):  # fmt: skip
    job = succeeded_lora_job(alice)
    beat = Beat(tmp_path).start()
    try:
        # The playground's socket, and the API on the same generation.
        async def ask_on_the_socket():
            socket = playground_socket(alice)
            connected, _ = await socket.connect()
            assert connected
            await socket.send_json_to(
                {"action": "run", "models": ["tailor-tiny", job.fine_tuned_model],
                 "prompt": "Where is my parcel?", **LONG_ANSWER}
            )  # fmt: skip
            while (message := await socket.receive_json_from(timeout=120))["type"] != "progress":
                pass
            inference_worker_process.kill()
            clock = Stopwatch("infer worker killed mid-answer (playground)", record_property)
            while (message := await socket.receive_json_from(timeout=60))["type"] != "done":
                pass
            clock.lap("playground socket told")
            await socket.disconnect()
            return message

        done = run_in_own_loop(ask_on_the_socket, timeout=200)
        assert (done["status"], done["error"]) == ("failed", WORKER_LOST)
        generation = Generation.objects.get(pk=done["id"])
        answer = api_client(alice).get(f"/api/v1/generations/{generation.pk}/").json()
        assert (answer["status"], answer["error"]) == ("failed", WORKER_LOST)

        # The /v1/ stream of an OpenAI client.
        inference_worker_process.start()
        token = create_token(alice, "stream").secret
        request = urllib.request.Request(
            f"{live_server_url}/v1/chat/completions", method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            data=json.dumps(
                {"model": job.fine_tuned_model, "stream": True, "max_tokens": 1024,
                 "temperature": 0, "messages": [{"role": "user", "content": "Hello"}]}
            ).encode(),
        )  # fmt: skip
        events = []
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.status == 200
            for raw in response:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                events.append(line.removeprefix("data: "))
                if len(events) == 3:  # the role, then text: it is answering
                    inference_worker_process.kill()
                    clock = Stopwatch(
                        "infer worker killed mid-answer (/v1 stream)", record_property
                    )
        clock.lap("/v1 stream told")
        assert json.loads(events[-1]) == {
            "error": {"message": WORKER_LOST, "type": "server_error", "param": None,
                      "code": "generation_failed"},
        }  # fmt: skip
    finally:
        beat.stop()
        if not inference_worker_process.child.alive():
            inference_worker_process.start()


def test_the_evaluation_worker_killed_mid_evaluation_runs_it_again_and_frees_the_job(
    alice, demo_models, maintenance_worker_process, tmp_path, record_property
):
    job = succeeded_lora_job(alice)
    evaluator = CeleryWorker("evaluate", "fault-evaluate")
    with studio(tmp_path, evaluator):
        evaluation = request_evaluation(job, trigger="manual", sample_size=500)
        wait_for(
            lambda: Evaluation.objects.get(pk=evaluation.pk).done >= 2, 120,
            "the evaluation to be under way",
        )  # fmt: skip
        evaluator.kill()
        clock = Stopwatch("evaluate worker killed mid-evaluation", record_property)
        evaluator.start()
        wait_for(lambda: Evaluation.objects.get(pk=evaluation.pk).attempt == 2, 60,
                 "the evaluation to run again")  # fmt: skip
        clock.lap("evaluation running again")
        finished = wait_for(
            lambda: (e := Evaluation.objects.get(pk=evaluation.pk)).status
            in ("succeeded", "failed") and e,
            300, "the evaluation to finish",
        )  # fmt: skip
        clock.lap("evaluation finished")
        assert finished.status == "succeeded", finished.error
        # Not stuck: a new one can be asked for at once.
        again = request_evaluation(current(job), trigger="manual", sample_size=5)
        assert again.pk != evaluation.pk
        wait_for(lambda: Evaluation.objects.get(pk=again.pk).status == "succeeded", 120,
                 "the new evaluation")  # fmt: skip


def test_an_export_whose_worker_dies_leaves_nothing_partial_and_a_new_one_becomes_ready(
    alice, demo_models, tmp_path, record_property
):
    job = succeeded_lora_job(alice)
    train = CeleryWorker("train", "fault-train", args=PRODUCTION_TRAIN)
    with studio(tmp_path, train):
        request_export(job)
        wait_for(lambda: current(job).export_status == "running", 60, "the export to start")
        (child,) = train.pool_children()
        kill(child)
        clock = Stopwatch("export's worker child SIGKILLed", record_property)
        wait_for(lambda: gone(child), 10, "the child to die")
        done = wait_for(
            lambda: (j := current(job)).export_status in ("ready", "failed") and j, 120,
            "the export to be taken back and finished",
        )  # fmt: skip
        clock.lap(f"export {done.export_status}")
    assert (done.export_status, done.export_attempt) == ("ready", 2), done.export_error
    exports = sorted(p.name for p in done.folder.glob("export-*"))
    assert exports == ["export-2"]  # attempt 1's half-written files are gone
    assert [p.name for p in (done.folder / "export-2").iterdir()] == ["merged-model.zip"]
    assert not list(done.folder.rglob("*.partial"))


def test_a_validation_whose_worker_dies_is_validated_again_without_the_user(
    alice, demo_models, tmp_path, record_property
):
    default = CeleryWorker("default", "fault-default")
    with studio(tmp_path, default):
        response = api_client(alice).post(
            "/api/v1/datasets/", {"file": upload("large.jsonl", chat_jsonl(150_000))},
            format="multipart",
        )  # fmt: skip
        dataset = Dataset.objects.get(pk=response.json()["id"])
        wait_for(
            lambda: Dataset.objects.get(pk=dataset.pk).rows_checked > 0, 60,
            "the validation to be under way",
        )  # fmt: skip
        default.kill()
        clock = Stopwatch("validation's worker SIGKILLed", record_property)
        default.start()
        ready = wait_for(
            lambda: (d := Dataset.objects.get(pk=dataset.pk)).status in ("ready", "invalid") and d,
            120, "the dataset to be validated again",
        )  # fmt: skip
        clock.lap(f"dataset {ready.status}")
    assert (ready.status, ready.attempt, ready.num_rows) == ("ready", 2, 150_000)
    assert FineTuneJob.objects.count() == 0  # nothing else was started by it


def test_a_playground_request_is_answered_while_an_evaluation_runs(
    alice, demo_models, celery_worker, record_property
):
    """Evaluations have their own queue and worker: the only inference slot
    is never held by one, so the playground and /v1/ never wait behind it."""
    job = succeeded_lora_job(alice)
    evaluation = request_evaluation(job, trigger="manual", sample_size=500)
    wait_for(
        lambda: Evaluation.objects.get(pk=evaluation.pk).done >= 1, 120,
        "the evaluation to be under way",
    )  # fmt: skip
    clock = Stopwatch("a playground request during an evaluation", record_property)
    client = api_client(alice)
    asked = client.post(
        "/api/v1/generations/",
        {"models": ["tailor-tiny", job.fine_tuned_model], "max_new_tokens": 8, "temperature": 0,
         "messages": [{"role": "user", "content": "Where is my parcel?"}]},
        format="json",
    )  # fmt: skip
    assert asked.status_code == 201, asked.json()
    answered = wait_for(
        lambda: (g := Generation.objects.get(pk=asked.json()["id"])).status
        in ("succeeded", "failed") and g,
        60, "the playground's answer",
    )  # fmt: skip
    clock.lap("answered")
    assert answered.status == "succeeded", answered.error
    # The evaluation was still going when the answer came.
    still = Evaluation.objects.get(pk=evaluation.pk)
    assert still.status == "running" and still.done < still.total
