"""The owner's organisation of a job on its pages: star it (from the jobs list
or the job page), tag it and note on it (the job page). Without scripts each
form posts and comes back to the page it was on; with htmx the part swaps.
Only the owner: everyone else, staff too, gets the 404 of a missing job."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from jobs.services import organise
from jobs.views import detail_context


def _back(request, job) -> str:
    """Where a form posted without scripts returns: the page it names, if it is ours."""
    wanted = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure()):
        return wanted
    return reverse("job-detail", args=[job.pk])


@login_required
@require_POST
def job_star(request, job_id):
    job = organise.access_own_job(request.user, job_id)
    try:
        change = organise.check_organisation({"starred": request.POST.get("starred", "")})
    except organise.OrganisationInvalid as error:
        messages.error(request, f"Starred: {error.problems[0].message}")
        return redirect(_back(request, job))
    job = organise.organise_job(job, change)
    if request.htmx:
        back = request.POST.get("next", "")
        return render(request, "jobs/_star.html", {"job": job, "back": back})
    return redirect(_back(request, job))


@login_required
@require_POST
def job_organise(request, job_id):
    """Save the tags and the note of the job page's form."""
    job = organise.access_own_job(request.user, job_id)
    fields = {name: request.POST.get(name, "") for name in ("tags", "note")}
    try:
        job = organise.organise_job(job, organise.check_organisation(fields))
    except organise.OrganisationInvalid as error:
        context = {
            "job": job,
            "tags": organise.tag_names(job),
            "can_organise": True,
            "organise_errors": error.as_dict(),  # the template puts each field's label first
            "sent": fields,
        }
        if request.htmx:
            return render(request, "jobs/job_detail.html#job-organise", context, status=422)
        return render(request, "jobs/job_detail.html", {**detail_context(request, job),
                                                        **context}, status=422)  # fmt: skip
    if request.htmx:
        context = {"job": job, "tags": organise.tag_names(job), "can_organise": True,
                   "organise_saved": True}  # fmt: skip
        return render(request, "jobs/job_detail.html#job-organise", context)
    messages.success(request, "Saved the tags and the note.")
    return redirect("job-detail", job_id=job.pk)
