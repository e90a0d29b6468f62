"""Pages of the jobs section: the list, the new-job wizard, a job's page and its
downloads, and the model catalog. Every job lookup goes through `access_job`."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import push_url, reswap, retarget

from jobs import config as cfg
from jobs import failures, vocabulary
from jobs.config.labels import for_people
from jobs.models import (
    Checkpoint,
    EventKind,
    FineTuneJob,
    JobEvent,
    JobStatus,
    MetricPoint,
    SweepTrial,
)
from jobs.services import (
    artifacts,
    catalog,
    estimates,
    housekeeping,
    lifecycle,
    lineage,
    live,
    organise,
)
from jobs.services.job_filters import JobFilters, filter_choices, group_by_dataset
from jobs.status_sentences import STATUS_SENTENCES, status_sentence
from jobs.vocabulary import ADAPTER_NAMES
from jobs.wizard import (
    JobWizard,
    Redraw,
    WizardInput,
    human_bytes,
    human_duration,
    human_parameters,
)
from quotas.services import QuotaExceeded, Standings, standing
from studio.services import object_store
from usage.services import job_usage

LOG_TAIL = 50
JOBS_PER_PAGE = 50


# --- list ---------------------------------------------------------------------------


@login_required
@require_GET
def job_list(request):
    """The user's jobs (staff: everyone's), filtered by the query string, which
    makes a filtered list a link to share; htmx asks for the results alone."""
    visible = FineTuneJob.objects.for_user(request.user)
    filters = JobFilters.from_query(request.GET)
    jobs = filters.apply(visible).select_related("base_model", "dataset")
    jobs = jobs.prefetch_related(organise.WITH_TAGS)
    page = Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    standings = Standings(request.user, page)
    for job in page:
        job.queue = standings.of(job)
    has_any = filters.any or bool(page.paginator.count)
    context = {
        "jobs": page,
        "page": page,
        "filters": filters,
        "query": filters.query(),
        "groups": group_by_dataset(page, jobs) if filters.grouped else None,
        "choices": filter_choices(visible) if has_any else None,
        "statuses": JobStatus.choices,
        "has_any": has_any,
    }
    if not request.htmx:
        return render(request, "jobs/job_list.html", context)
    # The address the browser shows is the filters' own, without empty fields.
    address = f"{reverse('jobs')}?{context['query']}" if context["query"] else reverse("jobs")
    return push_url(render(request, "jobs/job_list.html#job-results", context), address)


@login_required
@require_GET
def job_row(request, job_id):
    """One row of the list, for a job the list's socket has just heard of;
    nothing (204) when the list's filters, in the query string, leave it out."""
    job = lifecycle.access_job(request.user, job_id)
    filters = JobFilters.from_query(request.GET)
    if not filters.matches(job):
        return HttpResponse(status=204)
    job.queue = standing(job, request.user)
    # Its star's form returns, without scripts, to the list it is shown in.
    back = f"{reverse('jobs')}?{filters.query()}" if filters.query() else reverse("jobs")
    return render(request, "jobs/job_list.html#job-row", {"job": job, "back": back})


# --- new job ------------------------------------------------------------------------


def _render_wizard(request, wizard: JobWizard, *, status=200, upload_errors=None):
    template = "jobs/job_new.html"
    if request.htmx and upload_errors is None:
        template += "#wizard"
    context = {"wizard": wizard, "upload_errors": upload_errors or []}
    return render(request, template, context, status=status)


def _queued_message(request, job: FineTuneJob, wanted_name: str) -> None:
    text = f"“{job.name}” is queued for a training worker."
    if job.name != wanted_name:
        text += f" You already had a job named “{wanted_name}”, so this one is “{job.name}”."
    messages.success(request, text)


@login_required
@require_http_methods(["GET", "POST"])
def job_new(request):
    if request.method == "POST":
        wizard_input = WizardInput.from_post(request.POST)
        try:
            draft = lifecycle.check_start_job(request.user, wizard_input.document())
        except cfg.ConfigError as error:
            wizard = JobWizard(request.user, wizard_input, errors=error.as_dict())
            return _render_wizard(request, wizard, status=422)
        try:
            job = lifecycle.create_job(request.user, draft)
        except QuotaExceeded as refused:
            messages.error(request, refused.message)
            return _render_wizard(request, JobWizard(request.user, wizard_input), status=403)
        _queued_message(request, job, draft.config.name)
        return redirect("job-detail", job_id=job.pk)
    if request.GET.get("from"):
        source = lifecycle.access_job(request.user, request.GET["from"])
        wizard_input = WizardInput.from_document(lifecycle.clone_document(source))
    else:
        wizard_input = WizardInput(dataset=request.GET.get("dataset", ""))
    return _render_wizard(request, JobWizard(request.user, wizard_input))


@login_required
@require_POST
def job_preview(request):
    """The estimate and what depends on the changed inputs, for the choices so
    far (htmx): the changed inputs' own controls stay, and keep their focus."""
    wizard = JobWizard(request.user, WizardInput.from_post(request.POST))
    redraw = Redraw.after(
        set(request.POST.get("changed", "").split()),
        steps_drawn=request.POST.get("drawn") == "steps" and wizard.model is not None,
    )
    if redraw.form:
        response = render(request, "jobs/job_new.html#wizard", {"wizard": wizard})
        return retarget(reswap(response, "outerHTML"), "#wizard")
    context = {"wizard": wizard, "redraw": redraw, "oob": True}
    return render(request, "jobs/job_new.html#preview", context)


@login_required
@require_POST
def job_upload(request):
    """Create a job from an uploaded YAML configuration (as downloaded from a job page)."""
    upload = request.FILES.get("config_file")
    try:
        if upload is None:
            raise cfg.ConfigError([cfg.FieldError("config_file", "choose a YAML file.")])
        draft = lifecycle.check_start_job(request.user, lifecycle.parse_config_upload(upload))
    except cfg.ConfigError as error:
        wizard = JobWizard(request.user, WizardInput())
        upload_errors = [for_people(e) for e in error.errors]
        return _render_wizard(request, wizard, status=422, upload_errors=upload_errors)
    try:
        job = lifecycle.create_job(request.user, draft)
    except QuotaExceeded as refused:
        messages.error(request, refused.message)
        return _render_wizard(request, JobWizard(request.user, WizardInput()), status=403)
    _queued_message(request, job, draft.config.name)
    return redirect("job-detail", job_id=job.pk)


# --- one job ------------------------------------------------------------------------


def _panel_context(request, job: FineTuneJob) -> dict:
    """What the parts of the page that follow the job's status show; the
    page's script fetches them again (`job_detail` for htmx) when it ends."""
    # The figures the page's script shows from its live messages, formatted alike.
    summary = live.page_summary(job)
    return {
        "job": job,
        "summary": summary,
        "failure": failures.next_step(job.error_code) if job.status == JobStatus.FAILED else None,
        "can_retry": job.is_finished
        and (job.status != JobStatus.FAILED or failures.next_step(job.error_code).retry_helps),
        "has_points": MetricPoint.objects.filter(job=job).exists(),
        "checkpoints": Checkpoint.objects.filter(job=job),
        "adapter_ready": _ready(artifacts.adapter_archive, job),
        "merged_ready": _ready(artifacts.merged_archive, job),
        "can_export": artifacts.can_export(job),
        "can_resume": lifecycle.can_resume(job),
        "can_delete": lifecycle.can_delete(job),
        "disk": housekeeping.disk_usage(job),
        "show_traceback": request.user.is_staff,
        # The wizard's words for the estimate: duration, memory and what it rests on.
        **estimates.job_page_figures(job),
        # Once over: the device time and cost it took, against that estimate.
        **job_usage.job_page_figures(job),
        "eta": human_duration(summary["time_left_seconds"]),
        "elapsed": human_duration(summary["elapsed_seconds"]),
        "took": human_duration(job.took_seconds),
    }


def _queue_sentence(request, job: FineTuneJob) -> str:
    """Where a queued job stands: "Queued: 2nd in line; you have 1 running job, your limit."."""
    place = standing(job, request.user)
    return "" if place is None else place.sentence


def detail_context(request, job: FineTuneJob) -> dict:
    """Everything the whole job page shows."""
    events = list(JobEvent.objects.filter(job=job).order_by("-id")[:LOG_TAIL])[::-1]
    return {
        **_panel_context(request, job),
        "events": events,
        "config_yaml": lifecycle.config_yaml(job),
        "method_label": job.method_label,
        "status_sentence": _queue_sentence(request, job) or status_sentence(job.status),
        "status_sentences": STATUS_SENTENCES,
        # The owner's own organisation of the run (organise_views.py).
        "tags": organise.tag_names(job),
        "can_organise": job.owner_id == request.user.pk,
        # The sweep this job is a run of, if any (jobs/sweep_models.py).
        "sweep_trial": SweepTrial.objects.filter(job=job).select_related("sweep").first(),
        # Its objective, and the adapters it starts from (jobs/services/lineage.py).
        **lineage.page_context(job, request.user),
        "rewards": _rewards(job),
    }


def _rewards(job: FineTuneJob) -> dict | None:
    """A preference job's latest reward margin and preference accuracy (the
    held-out figure when there is one), for the page before its script runs."""
    if job.objective not in vocabulary.PREFERENCE_OBJECTIVES:
        return None
    points = MetricPoint.objects.filter(job=job, attempt=job.attempt)

    def latest(column: str):
        # As preference_chart.js: the newest evaluation's, else the newest step's.
        logged = points.exclude(**{column: None})
        newest = logged.filter(kind="eval").order_by("-step").first()
        newest = newest or logged.order_by("-step").first()
        return getattr(newest, column) if newest else None

    margin, accuracy = latest("reward_margin"), latest("preference_accuracy")
    return {"points": margin is not None or accuracy is not None, "margin": margin,
            "accuracy": accuracy}  # fmt: skip


@login_required
@require_GET
def job_detail(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    if request.htmx:
        return render(request, "jobs/job_detail.html#job-parts", _panel_context(request, job))
    return render(request, "jobs/job_detail.html", detail_context(request, job))


@login_required
@require_POST
def job_cancel(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    try:
        job = lifecycle.cancel_job(job)
    except lifecycle.JobStateError as error:
        messages.error(request, str(error))
    else:
        if job.status == JobStatus.CANCELLING:
            messages.info(request, "Cancelling: the job stops at its next step.")
        else:
            messages.success(request, "Cancelled.")
    return redirect("job-detail", job_id=job.pk)


@login_required
@require_POST
def job_retry(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    try:
        retry = lifecycle.retry_job(request.user, job)
    except lifecycle.JobStateError as error:
        messages.error(request, str(error))
        return redirect("job-detail", job_id=job.pk)
    except cfg.ConfigError as error:
        messages.error(request, f"This job cannot run again as it was: {error}")
        return redirect("job-detail", job_id=job.pk)
    except QuotaExceeded as refused:
        messages.error(request, refused.message)
        return redirect("job-detail", job_id=job.pk)
    messages.success(request, f"Retrying as a new job: “{retry.name}”.")
    return redirect("job-detail", job_id=retry.pk)


@login_required
@require_POST
def job_resume(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    try:
        job = lifecycle.resume_job(job)
    except lifecycle.JobStateError as error:
        messages.error(request, str(error))
    else:
        # "Resumed: queued to continue from its checkpoint of step 4."
        messages.success(request, job.events.filter(kind=EventKind.STATUS).last().message)
    return redirect("job-detail", job_id=job.pk)


@login_required
@require_POST
def job_delete(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    try:
        lifecycle.delete_job(job)
    except lifecycle.JobStateError as error:
        messages.error(request, str(error))
        target = reverse("job-detail", args=[job.pk])
    else:
        messages.success(request, f"Deleted “{job.name}” and its files.")
        target = reverse("jobs")
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": target})
    return redirect(target)


@login_required
@require_POST
def job_export(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    try:
        artifacts.request_export(job)
    except lifecycle.JobStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            "Merging the adapter into the base model; its download appears here when ready.",
        )
    return redirect("job-detail", job_id=job.pk)


@login_required
@require_GET
def job_config(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    response = HttpResponse(lifecycle.config_yaml(job), content_type="application/yaml")
    name = artifacts.download_name(job, "config")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _ready(find, job) -> bool:
    """Whether the archive `find(job)` locates is there to download; not
    while the object store fails (the page then offers no download, and
    the download's own address answers 503 with the store's sentence)."""
    try:
        return find(job) is not None
    except object_store.StorageError:
        return False


def _archive_response(job, find, what: str, missing: str):
    """The download of the archive `find(job)` locates, or a 404 saying
    `missing`; a 503 with its sentence when the object store fails."""
    try:
        path = find(job)
        if path is None:
            raise Http404(missing)
        return artifacts.download_response(job, path, what)
    except object_store.StorageError as error:
        return HttpResponse(str(error), status=503, content_type="text/plain; charset=utf-8")


@login_required
@require_GET
def job_adapter(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    return _archive_response(
        job, artifacts.adapter_archive, "adapter", "This job has no adapter to download."
    )


@login_required
@require_GET
def job_merged(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    return _archive_response(
        job, artifacts.merged_archive, "merged",
        "This job has no merged model to download yet.",
    )  # fmt: skip


# --- models -------------------------------------------------------------------------


@login_required
@require_GET
def model_list(request):
    rows = []
    for entry in catalog.list_models():
        memory = catalog.memory_by_method(entry)
        rows.append(
            {
                "entry": entry,
                "parameters": human_parameters(entry.parameters),
                "availability": catalog.availability(entry),
                "memory": [(ADAPTER_NAMES[m], human_bytes(b)) for m, b in memory.items()],
                "full_allowed": entry.parameters <= catalog.full_finetune_limit(),
                "download_size": human_bytes(catalog.weight_bytes(entry.parameters)),
            }
        )
    context = {
        "rows": rows,
        "full_limit": human_parameters(catalog.full_finetune_limit()),
    }
    return render(request, "jobs/model_list.html", context)
