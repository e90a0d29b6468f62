"""Celery tasks of serving (the `infer` queue): thin wrappers around serving.worker."""

from celery import shared_task

from serving import worker


@shared_task(name="serving.generate", bind=True, ignore_result=True)
def generate_task(self, generation_id: str) -> str:
    return worker.run_generation(generation_id, self.request.hostname or "worker")


@shared_task(name="serving.evaluate", ignore_result=True)
def evaluate_task(evaluation_id: str) -> str:
    return worker.run_evaluation(evaluation_id)
