"""Operations' periodic work, on the maintenance queue."""

from celery import shared_task

from ops import storage


@shared_task(name="ops.survey_storage", ignore_result=True)
def survey_storage() -> dict:
    """Beat: measure the media folder by kind and by user (ops/storage.py)."""
    return storage.measure_and_store()
