from celery import shared_task

from datasets_app import services


@shared_task(name="datasets.validate")
def validate_dataset(dataset_id: str, revision: int) -> str:
    return services.run_validation(dataset_id, revision)
