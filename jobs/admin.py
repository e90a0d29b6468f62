from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from taggit.models import Tag

from jobs.config import ConfigError
from jobs.models import (
    CatalogModel,
    Checkpoint,
    FineTuneJob,
    JobEvent,
    JobStatus,
    MetricPoint,
)
from jobs.services import housekeeping, lifecycle
from studio.admin_actions import (
    Outcome,
    Plan,
    ReadOnlyAdmin,
    confirm_then_apply,
    without_bulk_delete,
)


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = ("id", "display_name", "task", "parameters", "source_kind", "source", "enabled")
    list_filter = ("task", "source_kind", "enabled")
    search_fields = ("id", "display_name", "source")


class JobEventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    fields = ("created_at", "kind", "level", "message", "attempt")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def job_label(job: FineTuneJob) -> str:
    return f"Job “{job.name}” of {job.owner.get_username()}"


def _cancel_plan(job: FineTuneJob) -> Plan:
    if job.status in (JobStatus.CREATED, JobStatus.QUEUED):
        return Plan("cancelled at once: it has not started.")
    if job.status == JobStatus.RUNNING:
        return Plan(
            "stops at its next step, keeping its last checkpoint; its page says "
            "Cancelling at once, then Cancelled."
        )
    if job.status == JobStatus.CANCELLING:
        return Plan("is stopping already; left as it is.", acts=False)
    return Plan(f"has finished ({job.get_status_display().lower()}); left as it is.", acts=False)


def _cancel(job: FineTuneJob) -> Outcome:
    try:
        job = lifecycle.cancel_job(job)
    except lifecycle.JobStateError as error:
        return Outcome.unchanged(f"{job_label(job)} was not cancelled: {error}")
    if job.status == JobStatus.CANCELLING:
        return Outcome(f"{job_label(job)} is cancelling: it stops at its next step.")
    return Outcome(f"{job_label(job)} was cancelled.")


def _retry_plan(job: FineTuneJob) -> Plan:
    if not job.is_finished:
        return Plan(
            f"is {job.get_status_display().lower()}: only a finished job can be retried; "
            "left as it is.",
            acts=False,
        )
    return Plan(
        f"a new job of {job.owner.get_username()}’s, with the same configuration and data, "
        "is queued; this one stays as it is."
    )


def _retry(job: FineTuneJob) -> Outcome:
    if not job.owner.is_active:
        return Outcome.refused(
            f"{job_label(job)} was not retried: its owner is deactivated, and the new job "
            "would be theirs."
        )
    try:
        # Checked as its owner would be: the retry is theirs, on their data.
        retry = lifecycle.retry_job(job.owner, job)
    except (lifecycle.JobStateError, ConfigError) as error:
        return Outcome.refused(f"{job_label(job)} was not retried: {error}")
    return Outcome(f"{job_label(job)} was retried as a new job, queued ({retry.pk}).")


def _delete_plan(job: FineTuneJob) -> Plan:
    if not lifecycle.can_delete(job):
        return Plan(f"{_busy_reason(job)} Left as it is.", acts=False)
    size = filesizeformat(housekeeping.disk_usage(job)["total"])
    return Plan(
        f"deleted with its events, metrics, checkpoints and evaluations, and its files "
        f"({size}) removed. Its datasets stay."
    )


def _busy_reason(job: FineTuneJob) -> str:
    """Why lifecycle.delete_job refuses this job now, in its words."""
    if job.status == JobStatus.CANCELLING:
        return "The job is still stopping; delete it once it is cancelled."
    if job.status in lifecycle.BUSY_STATUSES:
        return f"The job is {job.get_status_display().lower()}; cancel it before deleting it."
    return "The job's merged model is being exported; delete it once the export is over."


def _delete(job: FineTuneJob) -> Outcome:
    size = filesizeformat(housekeeping.disk_usage(job)["total"])
    try:
        lifecycle.delete_job(job)
    except lifecycle.JobStateError as error:
        return Outcome.refused(f"{job_label(job)} was not deleted: {error}")
    return Outcome(f"{job_label(job)} was deleted with its files ({size}).")


@admin.register(FineTuneJob)
class FineTuneJobAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "status", "base_model", "method", "current_step",
                    "total_steps", "attempt", "created_at")  # fmt: skip
    list_filter = ("status", "method", "base_model")
    list_select_related = ("owner", "base_model")
    search_fields = ("name", "owner__username", "id", "fine_tuned_model")
    # Everything but the name is the ledger's: status and lease change only
    # through their services (a race-safe update and a JobEvent), and the
    # paths are where the download views and the inference worker read
    # files, so a path typed here could serve the secret key.
    readonly_fields = tuple(
        field.name for field in FineTuneJob._meta.fields if field.name != "name"
    )
    inlines = (JobEventInline,)
    actions = ("cancel_jobs", "retry_jobs", "delete_jobs")

    def has_add_permission(self, request):
        # A job is made from a validated configuration (the New job page, the API).
        return False

    def get_actions(self, request):
        return without_bulk_delete(super().get_actions(request))

    # --- actions: each through lifecycle, each job reported ---------------------------

    @admin.action(description="Cancel the selected jobs (running ones stop at their next step)",
                  permissions=["change"])  # fmt: skip
    def cancel_jobs(self, request, queryset):
        return confirm_then_apply(
            self, request, queryset.select_related("owner"),
            title="Cancel jobs", button="Yes, cancel them",
            intro="Cancelling stops other people's work: each job below, and what will happen "
            "to it. Its owner sees the change on their job page at once.",
            plan=_cancel_plan, apply=_cancel, label=job_label,
        )  # fmt: skip

    @admin.action(description="Retry the selected finished jobs as new jobs of their owners",
                  permissions=["change"])  # fmt: skip
    def retry_jobs(self, request, queryset):
        return confirm_then_apply(
            self, request, queryset.select_related("owner"),
            title="Retry jobs", button="Yes, retry them",
            intro="Each finished job below is queued again as a new job of its owner's, "
            "with the same configuration and data; it counts as theirs.",
            plan=_retry_plan, apply=_retry, label=job_label,
        )  # fmt: skip

    @admin.action(description="Delete the selected jobs with their files (not while running)",
                  permissions=["delete"])  # fmt: skip
    def delete_jobs(self, request, queryset):
        return confirm_then_apply(
            self, request, queryset.select_related("owner"),
            title="Delete jobs", button="Yes, delete them and their files",
            intro="Deleting cannot be undone: each job below, and what will happen to it. "
            "Queued, running and exporting jobs are not deleted: cancel them first.",
            plan=_delete_plan, apply=_delete, label=job_label,
        )  # fmt: skip

    # --- the change form's Delete: the same service --------------------------------------

    def delete_view(self, request, object_id, extra_context=None):
        job = self.get_object(request, unquote(object_id))
        if job is not None and not lifecycle.can_delete(job):
            return self._refuse_delete(request, job, _busy_reason(job))
        try:
            return super().delete_view(request, object_id, extra_context)
        except lifecycle.JobStateError as error:  # it started meanwhile
            return self._refuse_delete(request, job, str(error))

    def _refuse_delete(self, request, job, reason: str):
        self.message_user(request, f"{job_label(job)} was not deleted: {reason}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:jobs_finetunejob_change", args=[job.pk]))

    def delete_model(self, request, obj):
        lifecycle.delete_job(obj)

    def delete_queryset(self, request, queryset):
        for job in queryset.select_related("owner"):
            outcome = _delete(job)
            self.message_user(request, outcome.text, outcome.level)


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    # A checkpoint's path is where a resumed run loads its weights from; its
    # files go with its job (or with retention), never one row alone.
    list_display = ("job", "step", "attempt", "train_loss", "val_loss", "created_at")
    list_select_related = ("job",)
    search_fields = ("job__name", "job__owner__username", "=job__id")


@admin.register(MetricPoint)
class MetricPointAdmin(ReadOnlyAdmin):
    list_display = ("job", "owner", "attempt", "step", "kind", "train_loss", "val_loss",
                    "accuracy", "tokens_per_second", "created_at")  # fmt: skip
    list_filter = ("kind",)
    list_select_related = ("job__owner",)
    search_fields = ("job__name", "job__owner__username", "=job__id")
    # Newest first: the list of a table the size of every run's every step.
    ordering = ("-id",)

    @admin.display(ordering="job__owner__username")
    def owner(self, point: MetricPoint) -> str:
        return point.job.owner.get_username()


# django-taggit's own Tag admin edits one table of every owner's tag names:
# renaming or merging there would change other users' tags unaudited. A
# job's tags are its owner's (jobs/services/organise.py), so it is not offered.
admin.site.unregister(Tag)
