"""The operations page: staff only (404 for anyone else), its sections
refreshed one at a time by htmx (`?section=`), and /metrics."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops import metrics, snapshot


@require_GET
@never_cache
@login_required
def ops_page(request):
    if not request.user.is_staff:
        raise Http404
    name = request.GET.get("section")
    if name in snapshot.SECTIONS:
        return render(request, f"ops/ops.html#{name}", {name: snapshot.section(name)})
    return render(request, "ops/ops.html", snapshot.page())


@require_GET
@never_cache
def metrics_view(request):
    return metrics.metrics_response(request)
