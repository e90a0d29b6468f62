"""The analyst's home page: what is running, what finished, what is waiting,
and the one next step that moves their work forward.

Contract: `home_for(user)` reads only the user's own objects (staff included:
an operator's home is their own work; the fleet is the operators' page), in a
bounded number of queries whatever the user holds (each list is capped).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch
from django.urls import reverse

from datasets_app.models import Dataset
from jobs.models import ACTIVE_STATUSES, FineTuneJob, JobStatus
from serving.models import Evaluation, EvaluationStatus
from serving.services.evaluations import MetricRow, headline

SHOWN = 5  # rows in each list; the section links to the full list


@dataclass(frozen=True)
class Result:
    job: FineTuneJob
    metric: MetricRow | None  # the evaluation's headline, when one succeeded


@dataclass(frozen=True)
class NextStep:
    sentence: str
    action: str
    url: str


@dataclass(frozen=True)
class Home:
    running: list[FineTuneJob]
    results: list[Result]
    waiting: list[Dataset]
    next_step: NextStep
    has_jobs: bool


def home_for(user) -> Home:
    jobs = FineTuneJob.objects.filter(owner=user).select_related("base_model", "dataset")
    running = list(jobs.filter(status__in=ACTIVE_STATUSES).order_by("-created_at")[:SHOWN])
    evaluations = Evaluation.objects.filter(status=EvaluationStatus.SUCCEEDED).order_by(
        "-finished_at"
    )
    finished = list(
        jobs.filter(status=JobStatus.SUCCEEDED)
        .order_by("-finished_at")
        .prefetch_related(Prefetch("evaluations", queryset=evaluations, to_attr="done"))[:SHOWN]
    )
    results = [Result(job, headline(job.done[0]) if job.done else None) for job in finished]
    datasets = Dataset.objects.for_user(user).filter(owner=user)
    waiting = list(datasets.ready().filter(jobs__isnull=True).order_by("-created_at")[:SHOWN])
    has_jobs = jobs.exists()
    return Home(
        running=running,
        results=results,
        waiting=waiting,
        next_step=_next_step(running, results, waiting, datasets.exists(), has_jobs),
        has_jobs=has_jobs,
    )


def _next_step(running, results, waiting, has_datasets: bool, has_jobs: bool) -> NextStep:
    """The first of these that applies, most advanced work first."""
    if results and not has_jobs_after(results[0], running):
        job = results[0].job
        return NextStep(
            f"“{job.name}” finished: compare it with its base model on your own prompts.",
            "Open in playground",
            f"{reverse('playground')}?job={job.pk}",
        )
    if running:
        job = running[0]
        return NextStep(
            f"“{job.name}” is {job.get_status_display().lower()}: watch its loss fall.",
            "Watch the job",
            reverse("job-detail", args=[job.pk]),
        )
    if waiting:
        dataset = waiting[0]
        return NextStep(
            f"“{dataset.name}” is checked and ready: start a fine-tune on it.",
            "New job",
            f"{reverse('job-new')}?dataset={dataset.pk}",
        )
    if not has_datasets:
        return NextStep(
            "Start with a dataset: upload your examples, or add a sample to try the studio.",
            "Add a dataset",
            reverse("datasets"),
        )
    if not has_jobs:
        return NextStep(
            "Your datasets are being checked or need fixing; one that is ready can be trained on.",
            "See datasets",
            reverse("datasets"),
        )
    return NextStep(
        "Tune a new run from your best job, or upload more examples.",
        "New job",
        reverse("job-new"),
    )


def has_jobs_after(result: Result, running: list[FineTuneJob]) -> bool:
    """Whether a run started after this result (the user has moved on)."""
    return any(job.created_at > result.job.created_at for job in running)
