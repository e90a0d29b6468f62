from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def dataset_list(request):
    return render(request, "datasets_app/dataset_list.html")
