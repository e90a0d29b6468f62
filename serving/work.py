"""The background work of serving, as leased work (studio/services/leases.py):
evaluations (their own `evaluate` queue, so they never hold up the
playground) and generations (the `infer` queue)."""

from django.conf import settings
from django.db.models.functions import Now

from serving.errors import sentence
from serving.models import Evaluation, EvaluationStatus, Generation, GenerationStatus
from studio.events import publish
from studio.services import leases

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
)


def register() -> None:
    leases.register(EVALUATION)
    leases.register(GENERATION)
