"""Model names as users and OpenAI clients write them, and who may use which.

A base model is its catalog id ("tailor-tiny"); a fine-tuned model is its
job's `fine_tuned_model` ("ft:tailor-tiny:alice::1a2b3c4d"). A fine-tuned
model is usable once its job has succeeded, by its owner and by staff;
anyone else gets the same answer as for a name that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.models import CatalogModel, FineTuneJob, JobStatus
from jobs.services import catalog


class UnknownModel(Exception):
    """Raised for names that do not exist or that the user may not use."""

    def __init__(self, name: str, message: str | None = None):
        self.name = name
        self.message = message or (
            f"The model '{name}' does not exist or you do not have access to it."
        )
        super().__init__(self.message)


@dataclass(frozen=True)
class ServedModel:
    name: str
    base: CatalogModel
    job: FineTuneJob | None = None

    @property
    def is_base(self) -> bool:
        return self.job is None

    @property
    def task(self) -> str:
        return self.base.task

    @property
    def label(self) -> str:
        if self.job is None:
            return f"{self.base.display_name} (base)"
        return self.job.name

    @property
    def owner_name(self) -> str:
        return self.job.owner.get_username() if self.job else "tailor"


def usable_jobs(user):
    """Succeeded jobs with an adapter the user may run (staff: everyone's)."""
    return (
        FineTuneJob.objects.for_user(user)
        .filter(status=JobStatus.SUCCEEDED)
        .exclude(adapter_path="")
        .select_related("base_model", "owner")
    )


def usable_bases():
    return [
        entry for entry in CatalogModel.objects.filter(enabled=True)
        if catalog.availability(entry).usable
    ]  # fmt: skip


def resolve_model(user, name: str) -> ServedModel:
    """The model a name means for this user, or UnknownModel."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownModel(str(name), "Name a model: a base model id or a fine-tuned model name.")
    name = name.strip()
    if "\x00" in name or not _encodes(name):
        # No model is named so, and no database could look the name up:
        # PostgreSQL's text holds no NUL, and no driver encodes a lone surrogate.
        raise UnknownModel(name.encode("utf-8", "backslashreplace").decode())
    if name.startswith("ft:"):
        job = FineTuneJob.objects.for_user(user).filter(fine_tuned_model=name)
        job = job.select_related("base_model", "owner").first()
        if job is None:
            raise UnknownModel(name)
        if job.status != JobStatus.SUCCEEDED or not job.adapter_path:
            raise UnknownModel(
                name,
                f"The fine-tuned model '{name}' is not ready: its job is "
                f"{job.get_status_display().lower()}.",
            )
        return ServedModel(name=name, base=job.base_model, job=job)
    entry = CatalogModel.objects.filter(pk=name, enabled=True).first()
    if entry is None or not catalog.availability(entry).usable:
        raise UnknownModel(name)
    return ServedModel(name=name, base=entry)


def _encodes(name: str) -> bool:
    try:
        name.encode()
    except UnicodeEncodeError:  # a lone surrogate, from a JSON "\\ud800"
        return False
    return True


def servable_models(user) -> list[ServedModel]:
    """Every model the user may run: usable bases, then their fine-tuned models."""
    models = [ServedModel(name=entry.pk, base=entry) for entry in usable_bases()]
    models += [
        ServedModel(name=job.fine_tuned_model, base=job.base_model, job=job)
        for job in usable_jobs(user)
    ]
    return models
