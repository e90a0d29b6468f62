"""Pages of the jobs section: the job list and the model catalog."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from jobs.demo_models import describe_demo_models


@login_required
def job_list(request):
    return render(request, "jobs/job_list.html")


@login_required
def model_list(request):
    return render(request, "jobs/model_list.html", {"models": describe_demo_models()})
