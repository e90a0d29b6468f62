"""Pages of serving: the playground, its votes, and a job's evaluation panel.

Generation itself goes over the playground's websocket (consumers.py); these
views render, record votes and queue evaluations.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from jobs.models import JobStatus, ModelTask
from jobs.services import lifecycle
from jobs.vocabulary import PREFERENCE_OBJECTIVES
from serving.models import EvaluationTrigger
from serving.services import evaluations, generations, names, votes
from serving.services import playground as playground_page

# --- playground -----------------------------------------------------------------------


def _preselection(request) -> tuple[str | None, list[str]]:
    """The base and models a link asked for (?job=<id> or ?model=<name>)."""
    job_id = request.GET.get("job")
    if job_id:
        try:
            job = lifecycle.access_job(request.user, job_id)
        except Http404:
            return None, []
        if job.status == JobStatus.SUCCEEDED and job.adapter_path:
            chosen = [job.fine_tuned_model]
            parent = job.parent
            if parent and parent.status == JobStatus.SUCCEEDED and parent.owner_id == job.owner_id:
                # A job trained on from another: its parent answers beside it.
                chosen.insert(0, parent.fine_tuned_model)
            elif job.task == ModelTask.CAUSAL_LM:
                chosen.insert(0, job.base_model_id)
            return job.base_model_id, chosen
        return job.base_model_id, [job.base_model_id]
    name = request.GET.get("model")
    if name:
        try:
            served = names.resolve_model(request.user, name)
        except names.UnknownModel:
            return None, []
        return served.base.pk, [served.name]
    return None, []


@login_required
@require_GET
def playground(request):
    bases = names.usable_bases()
    fine_tuned = list(names.usable_jobs(request.user).order_by("-finished_at"))
    by_base = {base.pk: [] for base in bases}
    for job in fine_tuned:
        if job.base_model_id in by_base:
            by_base[job.base_model_id].append(job)
    base_id, chosen = _preselection(request)
    if base_id not in by_base:
        # Start where the user's newest fine-tuned model is, else the first base.
        newest = next((job for job in fine_tuned if job.base_model_id in by_base), None)
        base_id = newest.base_model_id if newest else (bases[0].pk if bases else None)
        if newest:
            chosen = [newest.fine_tuned_model]
            if newest.task == ModelTask.CAUSAL_LM:
                chosen.insert(0, newest.base_model_id)
    recent, recent_again = playground_page.recent_prompts(request.user)
    if request.htmx and request.htmx.target == "recent-prompts":
        # Asked again once a run has finished: the list with the new prompt.
        context = {"recent": recent, "recent_again": recent_again}
        return render(request, "serving/playground.html#recent", context)
    context = {
        "bases": [
            {
                "entry": base,
                "jobs": by_base[base.pk],
                "is_classifier": base.task == ModelTask.SEQUENCE_CLASSIFICATION,
            }
            for base in bases
        ],
        "base_id": base_id,
        "chosen": chosen,
        "has_fine_tuned": bool(fine_tuned),
        "recent": recent,
        "recent_again": recent_again,
        "tallies": votes.tallies_as_seen(request.user),
        "limits": {
            "max_new_tokens": settings.TAILOR_MAX_NEW_TOKENS,
        },
    }
    return render(request, "serving/playground.html", context)


@login_required
@require_POST
def vote(request, generation_id):
    generation = generations.access_generation(request.user, generation_id)
    context = {"vote_error": None, "voted": None}
    try:
        context["voted"] = votes.cast_vote(
            request.user,
            generation,
            request.POST.get("model_a", ""),
            request.POST.get("model_b", ""),
            request.POST.get("choice", ""),
        )
    except generations.InvalidRequest as exc:
        context["vote_error"] = exc.message
    context["tallies"] = votes.tallies_as_seen(request.user)
    status = 422 if context["vote_error"] else 200
    return render(request, "serving/playground.html#vote_result", context, status=status)


# --- a job's evaluation -------------------------------------------------------------------


def _evaluation_context(job, **extra) -> dict:
    evaluation = evaluations.latest_evaluation(job)
    results = (evaluation.results or {}) if evaluation else {}
    return {
        "job": job,
        "evaluation": evaluation,
        "is_classifier": job.task == ModelTask.SEQUENCE_CLASSIFICATION,
        "is_preference": job.objective in PREFERENCE_OBJECTIVES,
        # A preference job is compared with the model it started from.
        "before": "Parent" if results.get("compared_with") == "parent" else "Base",
        "metric_rows": evaluations.metric_rows(evaluation) if evaluation else [],
        "headline": evaluations.headline(evaluation) if evaluation else None,
        "labels": results.get("labels") or [],
        "confusions": evaluations.confusion_tables(evaluation) if evaluation else [],
        "class_rows": evaluations.class_rows(evaluation) if evaluation else [],
        "samples": results.get("samples", []),
        "cannot_evaluate": evaluations.can_evaluate(job),
        "default_sample_size": settings.TAILOR_EVAL_SAMPLE_SIZE,
        "max_sample_size": evaluations.MAX_SAMPLE_SIZE,
        **extra,
    }


@login_required
@require_GET
def job_evaluation(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    return render(request, "serving/_evaluation.html", _evaluation_context(job))


@login_required
@require_POST
def job_evaluate(request, job_id):
    job = lifecycle.access_job(request.user, job_id)
    error = None
    try:
        evaluations.request_evaluation(
            job,
            trigger=EvaluationTrigger.MANUAL,
            sample_size=evaluations.read_sample_size(request.POST.get("sample_size")),
        )
    except evaluations.EvaluationRefused as exc:
        error = exc.message
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("job-detail", job_id=job.pk)
    context = _evaluation_context(job, evaluate_error=error)
    return render(request, "serving/_evaluation.html", context, status=422 if error else 200)
