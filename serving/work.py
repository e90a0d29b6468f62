"""The background work of serving, as leased work (studio/services/leases.py):
evaluations (their own `evaluate` queue, so they never hold up the
playground) and generations (the `infer` queue).

A generation goes, where several serving workers report, to the one whose
heartbeat says it has the request's base loaded (`generation_queue`, its own
queue: studio/services/capacity.py), the least busy of those; else to the
shared `infer` queue, where any idle worker takes it and loads the base. The
trade-off: a busy holder is preferred to an idle worker that would load the
base first (seconds to minutes for a large model), and a holder that died
within its last three beats holds the request until it expires (the asker
is told no worker took it, as with no worker at all).
"""

from collections import Counter

import redis
from django.conf import settings
from django.db.models.functions import Now

from serving.errors import sentence
from serving.models import Evaluation, EvaluationStatus, Generation, GenerationStatus
from studio.events import publish
from studio.services import capacity, leases

# A reaper's message about a generation comes after any the worker sent.
LAST_SEQ = 2**31 - 1

WORKER_LOST = sentence("worker_lost")


def evaluation_lost(evaluation: Evaluation, why: str) -> bool:
    """An evaluation whose worker died or hung: queued again while attempts
    remain, else failed; either way a new one can be requested at once."""
    message = sentence("evaluation_lost", cause=leases.lost_cause(why), attempts=evaluation.attempt)
    failed = {"status": EvaluationStatus.FAILED, "error": message, "finished_at": Now()}
    return leases.requeue_or_fail(EVALUATION, evaluation, failed=failed, done=0)


def generation_lost(generation: Generation, why: str) -> bool:
    """A generation is interactive: its asker is waiting, so it is never
    retried behind their back. Failed, and said so on its live group (the
    playground's socket and the /v1/ stream both listen there)."""
    from serving.services import generations

    error = generations.no_worker_message() if why == "not_taken" else WORKER_LOST
    done = Generation.objects.filter(
        pk=generation.pk,
        status__in=(GenerationStatus.QUEUED, GenerationStatus.RUNNING),
        attempt=generation.attempt,
    ).update(status=GenerationStatus.FAILED, error=error, finished_at=Now(), lease_expires_at=None)
    if done:
        publish(
            generations.generation_group(generation.pk),
            {"type": "generation.done", "seq": LAST_SEQ, "id": str(generation.pk),
             "status": GenerationStatus.FAILED, "error": error, "results": []},
        )  # fmt: skip
    return bool(done)


EVALUATION = leases.WorkKind(
    name="evaluation",
    model=Evaluation,
    queue="evaluate",
    task="serving.evaluate",
    waiting=EvaluationStatus.QUEUED,
    running=(EvaluationStatus.RUNNING,),
    on_lost=evaluation_lost,
)


def generation_queue(generation: Generation) -> str:
    """The queue of a serving worker that has the generation's base loaded,
    if several report and one has; else `infer`. Three Redis round trips
    and one query; never raises (Redis away: `infer`)."""
    from jobs.services.catalog import model_source
    from ops import workers

    try:
        found = workers.read_all()
    except redis.RedisError:
        return capacity.INFER
    serving = [
        record for record in found
        if record.get("reporting")
        and capacity.own_infer_queue(record["name"]) in (record.get("queues") or ())
    ]  # fmt: skip
    if len(serving) < 2:
        return capacity.INFER  # one worker takes either queue: the shared one outlives it
    source = model_source(generation.base_model)
    holders = [
        record["name"] for record in serving
        if any(model.get("source") == source for model in record.get("loaded") or ())
    ]  # fmt: skip
    if not holders:
        return capacity.INFER
    busy = Counter(
        Generation.objects.filter(status=GenerationStatus.RUNNING, worker__in=holders)
        .values_list("worker", flat=True)
    )  # fmt: skip
    return capacity.own_infer_queue(min(holders, key=lambda name: (busy[name], name)))


GENERATION = leases.WorkKind(
    name="generation",
    model=Generation,
    queue="infer",
    task="serving.generate",
    waiting=GenerationStatus.QUEUED,
    running=(GenerationStatus.RUNNING,),
    on_lost=generation_lost,
    resend=False,
    # The asker fails a request no worker took; this covers an asker that died.
    give_up_waiting_after=lambda: 2 * settings.TAILOR_GENERATION_START_TIMEOUT_SECONDS,
    send_options=lambda: {"expires": settings.TAILOR_GENERATION_START_TIMEOUT_SECONDS},
    route=generation_queue,
)


def register() -> None:
    leases.register(EVALUATION)
    leases.register(GENERATION)
