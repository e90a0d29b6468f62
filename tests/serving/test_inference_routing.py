"""With several serving workers, a request goes to the one whose heartbeat
says it has the base loaded (its own queue), else to the shared `infer`
queue (serving/work.py). Two real serving workers on the tiny model, real
Redis and database."""

import pytest

from jobs.services.catalog import model_source
from ops import workers
from serving.models import Generation, GenerationSource, GenerationStatus
from serving.services import generations
from serving.work import generation_queue
from tests.processes import WORKER_ENV, CeleryWorker, paused_workers, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def serving_worker(role: str) -> CeleryWorker:
    return CeleryWorker("infer", role, env={**WORKER_ENV, "TAILOR_WORKER_HEARTBEAT_SECONDS": "1"})


def heartbeat_of(name: str) -> dict | None:
    return next((w for w in workers.read_all() if w["name"] == name and w["reporting"]), None)


def ask(user) -> Generation:
    request = generations.GenerationRequest(
        models=["tailor-tiny"], messages=[{"role": "user", "content": "Where is my parcel?"}],
        params={"max_new_tokens": 4, "seed": 7},
    )  # fmt: skip
    checked = generations.check_request(user, request)
    return generations.create_generation(user, checked, source=GenerationSource.PLAYGROUND)


def answered(generation: Generation, worker: CeleryWorker) -> Generation:
    return wait_for(
        lambda: (g := Generation.objects.get(pk=generation.pk)).status == GenerationStatus.SUCCEEDED
        and g, 120, "the answer", worker.child,
    )  # fmt: skip


def test_a_request_goes_to_the_worker_that_has_its_base_loaded(alice):
    first, second = serving_worker("infer-a"), serving_worker("infer-b")
    with paused_workers({"infer"}):
        first.start()
        second.start()
        try:
            for worker in (first, second):
                found = wait_for(lambda w=worker: heartbeat_of(w.name), 30, "a heartbeat")
                assert found["queues"] == ["infer", f"infer.{worker.name}"]
            # Nobody has the base loaded: the shared queue, any idle worker.
            opening = ask(alice)
            assert generation_queue(opening) == "infer"
            generations.dispatch(opening.pk)
            holder_name = answered(opening, first).worker
            holder = first if holder_name == first.name else second
            source = model_source(opening.base_model)
            wait_for(
                lambda: any(m["source"] == source for m in heartbeat_of(holder.name)["loaded"] or ()),
                30, "the holder's heartbeat to list the base",
            )  # fmt: skip
            # Both idle, one holds the base: every request goes to that one
            # (the shared queue would hand them out by turns).
            for _ in range(4):
                generation = ask(alice)
                assert generation_queue(generation) == f"infer.{holder.name}"
                generations.dispatch(generation.pk)
                assert answered(generation, holder).worker == holder.name
            # One serving worker left: the shared queue, which outlives it.
            other = second if holder is first else first
            other.stop()
            assert generation_queue(ask(alice)) == "infer"
        finally:
            first.stop()
            second.stop()
