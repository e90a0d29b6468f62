"""Celery tasks of serving: thin wrappers around serving.worker. Generations
run on the `infer` queue, evaluations on `evaluate` (their own worker, so an
evaluation never holds up the playground or /v1/)."""

from celery import shared_task

from serving import worker
from studio.services import leases


@shared_task(name="serving.generate", bind=True, ignore_result=True)
def generate_task(self, generation_id: str) -> str:
    return worker.run_generation(
        generation_id, self.request.hostname or "worker", hard_stop=leases.end_process
    )


@shared_task(name="serving.evaluate", bind=True, ignore_result=True)
def evaluate_task(self, evaluation_id: str) -> str:
    return worker.run_evaluation(
        evaluation_id, self.request.hostname or "worker", hard_stop=leases.end_process
    )
