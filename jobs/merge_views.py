"""/jobs/merge/: choose succeeded adapters of one base, their weights and a
combination; the merge becomes a job (jobs/services/merges.py does the work).

A plain form that posts without JavaScript; with htmx the form alone is
redrawn with its errors, and a success redirects (HX-Redirect).
"""

from dataclasses import dataclass, field
from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from jobs import config as cfg
from jobs.config.labels import for_people
from jobs.models import FineTuneJob, JobStatus
from jobs.services import merges
from jobs.vocabulary import CAUSAL_LM, Adapter
from quotas.services import QuotaExceeded

# The newest adapters the page offers; older ones merge through the API.
MAX_LISTED = 200
# Each combination in one line, as the page explains it.
COMBINATION_HELP = {
    "linear": "Adds the adapters, each times its weight. The plainest; needs adapters of one rank.",
    "ties": "Keeps each adapter's largest changes, then the sign most adapters agree on, "
    "and averages those: less interference between adapters.",
    "dare_linear": "Drops a random share of each adapter's changes (1 − density), rescales "
    "the rest, then adds them.",
    "dare_ties": "DARE's random drop, then TIES' sign election and average.",
}
# The input each field's errors are shown under.
INPUTS = {
    "merge.sources": "sources",
    "merge.weights": "sources",
    "merge.combination": "combination",
    "merge.density": "density",
    "name": "name",
}


@dataclass
class MergeForm:
    """The merge as posted (or pre-selected), and its errors by input."""

    sources: list[str] = field(default_factory=list)
    weights: dict[str, str] = field(default_factory=dict)  # job id -> typed weight
    combination: str = "linear"
    density: str = "0.5"
    name: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_post(cls, post) -> "MergeForm":
        sources = [s for s in post.getlist("sources") if s]
        return cls(
            sources=sources,
            weights={s: post.get(f"weight-{s}", "").strip() for s in sources},
            # Left empty: the defaults the page shows.
            combination=post.get("combination") or "linear",
            density=post.get("density", "").strip() or "0.5",
            name=post.get("name", "").strip(),
        )

    def arguments(self) -> dict:
        """check_merge's arguments: no weight typed means equal weights."""
        typed = [self.weights.get(s, "") for s in self.sources]
        return {
            "sources": self.sources,
            "weights": typed if any(typed) else [],
            "combination": self.combination,
            "density": self.density,
            "name": self.name,
        }

    def refuse(self, error: cfg.ConfigError) -> None:
        for problem in error.errors:
            label, message = for_people(problem)
            self.summary.append((label, message))
            self.errors.setdefault(INPUTS.get(problem.field, "sources"), []).append(message)


def mergeable_jobs(user) -> list[FineTuneJob]:
    """The user's succeeded adapter jobs of text generation, by base model, newest first."""
    jobs = (
        FineTuneJob.objects.filter(owner=user, status=JobStatus.SUCCEEDED, task=CAUSAL_LM)
        .exclude(method=Adapter.FULL)
        .exclude(adapter_path="")
        .select_related("base_model", "dataset")
        .order_by("base_model__sort_order", "base_model_id", "-finished_at")
    )
    return list(jobs[:MAX_LISTED])


def _context(request, form: MergeForm) -> dict:
    jobs = mergeable_jobs(request.user)
    chosen = set(form.sources)
    groups = []
    for model, found in groupby(jobs, key=lambda job: job.base_model):
        # Chosen jobs first: the first one checked is the merge's parent.
        rows = sorted(found, key=lambda job: str(job.pk) not in chosen)
        weights = [form.weights.get(str(job.pk), "") for job in rows]
        groups.append(
            (model, [(job, str(job.pk) in chosen, w) for job, w in zip(rows, weights, strict=True)])
        )
    combinations = [
        (key, label, COMBINATION_HELP[key]) for key, label in cfg.MERGE_COMBINATIONS.items()
    ]
    return {"form": form, "groups": groups, "combinations": combinations}


@login_required
@require_http_methods(["GET", "POST"])
def merge_new(request):
    if request.method == "GET":
        # "Merge with other adapters…" on a job's page pre-selects that job.
        form = MergeForm(sources=[request.GET["job"]] if request.GET.get("job") else [])
        return render(request, "jobs/merge.html", _context(request, form))
    form = MergeForm.from_post(request.POST)
    try:
        draft = merges.check_merge(request.user, **form.arguments())
        job = merges.create_merge(request.user, draft)
    except cfg.ConfigError as error:
        form.refuse(error)
        template = "jobs/merge.html#merge-form" if request.htmx else "jobs/merge.html"
        return render(request, template, _context(request, form), status=422)
    except QuotaExceeded as refused:
        messages.error(request, refused.message)
        return render(request, "jobs/merge.html", _context(request, form), status=403)
    messages.success(
        request,
        f"Merging {len(form.sources)} adapters into “{job.name}”; it answers in the "
        "playground once it has succeeded.",
    )
    target = reverse("job-detail", args=[job.pk])
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": target})
    return redirect(target)
