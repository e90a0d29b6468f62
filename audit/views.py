"""/ops/audit/: the audit log for operators, filtered and paginated, and its CSV."""

import csv
import json
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.forms import AuditFilterForm, kind_label
from audit.models import AuditEntry

ENTRIES_PER_PAGE = 50
CSV_COLUMNS = ("when", "who", "action", "door", "address", "kind", "object id", "object",
               "owner", "on another's object", "detail")  # fmt: skip


def staff_only(view):
    """Signed in and staff; anyone else gets the 404 of a page that does not exist."""

    @wraps(view)
    @login_required
    def checked(request, *args, **kwargs):
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return checked


def _filtered(request) -> tuple[AuditFilterForm, object]:
    form = AuditFilterForm(request.GET)
    return form, form.filter(AuditEntry.objects.all())


@staff_only
@require_GET
def audit_log(request):
    form, entries = _filtered(request)
    page = Paginator(entries, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    for entry in page:
        entry.kind_label = kind_label(entry.target_type)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "audit/audit_log.html", context)


class _Echo:
    def write(self, value):
        return value


# A cell a spreadsheet would run as a formula (a dataset named "=HYPERLINK(…)").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _rows(entries):
    yield CSV_COLUMNS
    for entry in entries.iterator(chunk_size=2000):
        yield [
            _cell(v)
            for v in (
                entry.at.isoformat(), entry.actor_name or "system", entry.action, entry.door,
                entry.ip, entry.target_type, entry.target_id, entry.target_name,
                entry.owner_name, "yes" if entry.on_anothers_object else "no",
                json.dumps(entry.detail, ensure_ascii=False) if entry.detail else "",
            )
        ]  # fmt: skip


@staff_only
@require_GET
def audit_export(request):
    """The filtered entries, newest first, as CSV (streamed: no row limit)."""
    _, entries = _filtered(request)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _rows(entries)), content_type="text/csv; charset=utf-8"
    )
    name = f"tailor-audit-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
