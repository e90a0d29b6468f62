"""The playground's websocket with a real inference worker and a really trained
adapter: panes stream, finish with timings, fail alone; evaluations run when
a job succeeds. Real Redis, real Celery worker, real training."""

import itertools
import shutil

import pytest
from channels.testing import WebsocketCommunicator

from jobs.models import FineTuneJob
from serving.models import Evaluation, Generation
from studio.asgi import application
from tests.builders import finished_job, ready_sample, run_to_success
from tests.live import run_in_own_loop
from tests.processes import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.training,
    pytest.mark.django_db(transaction=True),
]


def socket_for(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/playground/")
    communicator.scope["user"] = user
    communicator.scope["headers"] = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
    return communicator


def trained_job(owner) -> FineTuneJob:
    """A short real run of tailor-tiny on the routing sample, by the worker."""
    dataset = ready_sample(owner)
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
        "training": {"max_steps": 40, "batch_size": 16, "learning_rate": 0.003,
                     "logging_steps": 10, "save_every": 40},
        "name": "Routing, short",
    }  # fmt: skip
    return run_to_success(owner, document)


async def run_and_collect(socket, request: dict) -> list[dict]:
    await socket.send_json_to({"action": "run", **request})
    messages = []
    while True:
        message = await socket.receive_json_from(timeout=120)
        messages.append(message)
        if message["type"] in ("done", "invalid"):
            return messages


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("celery_worker", "demo_models")
def test_base_and_fine_tuned_stream_side_by_side_and_the_job_is_evaluated(alice):
    job = trained_job(alice)
    broken = finished_job(alice, job.dataset, name="Deleted adapter")
    shutil.rmtree(broken.folder, ignore_errors=True)
    # The job's success queued its evaluation on the inference worker.
    evaluation = wait_for(
        lambda: Evaluation.objects.filter(job=job, status__in=("succeeded", "failed")).first(),
        300,
        "the automatic evaluation",
    )
    assert evaluation.status == "succeeded", evaluation.error
    assert evaluation.trigger == "automatic"
    results = evaluation.results
    assert results["fine_tuned"]["exact_match"] > results["base"]["exact_match"]
    assert results["fine_tuned"]["val_loss"] < results["base"]["val_loss"]
    assert len(results["samples"]) == evaluation.sample_size

    request = {
        "models": ["tailor-tiny", job.fine_tuned_model],
        "system": "",
        "prompt": "I was charged twice for my order",
        "max_new_tokens": 12,
        "temperature": 0,
        "top_p": 1,
        "seed": 3,
    }

    async def scenario():
        socket = socket_for(alice)
        connected, _ = await socket.connect(timeout=10)
        assert connected
        first = await run_and_collect(socket, request)
        again = await run_and_collect(socket, request)
        one_broken = await run_and_collect(
            socket, {**request, "models": [job.fine_tuned_model, broken.fine_tuned_model]}
        )
        await socket.disconnect()
        return first, again, one_broken

    first, again, one_broken = run_in_own_loop(scenario, timeout=300)
    kinds = [m["type"] for m in first]
    assert kinds[0] == "queued" and kinds[1] == "started" and kinds[-1] == "done"
    assert [p["model"] for p in first[0]["panes"]] == ["tailor-tiny", job.fine_tuned_model]
    progress = [m for m in first if m["type"] == "progress"]
    assert progress, kinds
    seqs = [m["seq"] for m in progress]
    assert seqs == sorted(seqs)
    done = first[-1]
    assert done["status"] == "succeeded"
    base, tuned = done["results"]
    # Texts only grow, and end as the stored results.
    for index, result in enumerate((base, tuned)):
        texts = [m["texts"][index] for m in progress]
        assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
        assert result["text"].startswith(texts[-1])
        assert result["error"] is None
        assert result["completion_tokens"] > 0 and result["tokens_per_second"] > 0
        assert result["first_token_seconds"] is not None
    assert base["text"] != tuned["text"]
    assert tuned["text"] in ("billing", "shipping", "technical", "account")
    # Same seed, same prompt: the same answers.
    assert [r["text"] for r in again[-1]["results"]] == [base["text"], tuned["text"]]
    generation = Generation.objects.get(pk=done["id"])
    assert generation.status == "succeeded" and generation.results[1]["text"] == tuned["text"]

    # A pane whose adapter files are gone fails alone; the other still answers.
    assert one_broken[-1]["status"] == "succeeded"
    working, failed = one_broken[-1]["results"]
    assert (working["error"], working["text"]) == (None, tuned["text"])
    assert failed["finish_reason"] == "error"
    assert failed["error"].startswith("The fine-tuned adapter could not be loaded")


@pytest.mark.usefixtures("demo_models")
def test_a_bad_request_is_answered_field_by_field_and_nothing_is_stored(alice, bob):
    job = finished_job(alice, ready_sample(alice))

    async def scenario():
        socket = socket_for(bob)
        await socket.connect(timeout=10)
        foreign = await run_and_collect(socket, {"models": [job.fine_tuned_model], "prompt": "hi"})
        out_of_range = await run_and_collect(
            socket, {"models": ["tailor-tiny"], "prompt": "", "temperature": 9}
        )
        await socket.disconnect()
        return foreign[-1], out_of_range[-1]

    foreign, out_of_range = run_in_own_loop(scenario)
    assert foreign == {
        "type": "invalid",
        "errors": {
            "models": f"The model '{job.fine_tuned_model}' does not exist or you do not have "
            "access to it."
        },
    }
    # The page's fields in plain sentences; the APIs keep their field paths.
    assert out_of_range == {
        "type": "invalid",
        "errors": {
            "prompt": "Write a message first.",
            "temperature": "Temperature must be at least 0 and at most 2.",
        },
    }
    assert not Generation.objects.exists()


def test_a_visitor_cannot_open_the_playground_socket():
    from django.contrib.auth.models import AnonymousUser

    async def scenario():
        socket = socket_for(AnonymousUser())
        connected, _ = await socket.connect(timeout=10)
        return connected

    assert run_in_own_loop(scenario) is False
