from celery import shared_task

from datasets_app import services
from studio.services import leases


@shared_task(name="datasets.validate", bind=True, ignore_result=True)
def validate_dataset(self, dataset_id: str, revision: int) -> str:
    return services.run_validation(
        dataset_id, revision, self.request.hostname or "worker", hard_stop=leases.end_process
    )
