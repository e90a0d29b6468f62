"""Dataset validation as leased work (studio/services/leases.py)."""

from django.db.models import Q

from datasets_app.models import Dataset, DatasetStatus
from studio.services import leases


def validation_lost(dataset: Dataset, why: str) -> bool:
    """A validation whose worker died or hung: validated again, without the
    user doing anything, while the revision's attempts remain; else invalid
    with the reason."""
    attempts = dataset.attempt - dataset.attempt_base
    error = {
        "line": None,
        "field": None,
        "code": "worker_lost",
        "message": (
            f"Validation's worker {leases.lost_cause(why)} on every attempt ({attempts}), so "
            "Tailor gave up. A file this large may need more memory on the worker; tell an "
            "operator, then validate again."
        ),
    }
    invalid = {"status": DatasetStatus.INVALID, "error_count": 1, "errors": [error],
               "warnings": []}  # fmt: skip
    return leases.requeue_or_fail(
        VALIDATION, dataset, failed=invalid, rows_checked=0, bytes_checked=0
    )


VALIDATION = leases.WorkKind(
    name="validation",
    model=Dataset,
    queue="default",
    task="datasets.validate",
    waiting=DatasetStatus.UPLOADED,
    running=(DatasetStatus.VALIDATING,),
    on_lost=validation_lost,
    task_args=lambda dataset: [str(dataset.pk), dataset.revision],
    scope=Q(deleted_at__isnull=True),
)


def register() -> None:
    leases.register(VALIDATION)
