"""/usage/ (each user's month, staff may name a user with ?user=), /ops/usage/
(every user's month, staff only: 403 for anyone else) and their CSVs."""

import csv
import io
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.views import FORMULA_STARTS
from usage.services import report
from usage.services.report import BadMonth, Month


def _month_or_error(request):
    try:
        return Month.parse(request.GET.get("month")), None
    except BadMonth as error:
        page = render(
            request, "usage/bad_month.html", {"error": error.sentence, "current": Month.of()},
            status=400,
        )  # fmt: skip
        return None, page


@login_required
@require_GET
def usage_page(request):
    user = report.whose(request.user, request.GET.get("user"))
    month, refused = _month_or_error(request)
    if refused:
        return refused
    own = user == request.user
    context = {
        "report": report.for_user(user, month),
        "own": own,
        "next_month": month.next_one(),
        # What the page's links keep: whose usage (staff reading another's).
        "user_query": "" if own else urlencode({"user": user.get_username()}) + "&",
    }
    return render(request, "usage/usage.html", context)


def staff_only(view):
    """Signed in and staff; anyone else is told they may not (403: the page is
    linked from /ops/, and says so, rather than pretending not to exist)."""

    @wraps(view)
    @login_required
    def checked(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("Only operators may see every user's usage.")
        return view(request, *args, **kwargs)

    return checked


@staff_only
@require_GET
def everyone_page(request):
    month, refused = _month_or_error(request)
    if refused:
        return refused
    sort = request.GET.get("sort") or report.DEFAULT_SORT
    context = {"report": report.for_everyone(month, sort), "next_month": month.next_one()}
    return render(request, "usage/everyone.html", context)


# --- CSV ---------------------------------------------------------------------------------------


def _cell(value) -> str:
    """As audit/views.py writes cells: a name starting like a formula is not run."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv(rows, filename: str) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def usage_csv(request):
    """The month's jobs with their device time and cost."""
    user = report.whose(request.user, request.GET.get("user"))
    month, refused = _month_or_error(request)
    if refused:
        return refused
    rows = report.user_csv_rows(report.for_user(user, month))
    return _csv(rows, f"tailor-usage-{user.get_username()}-{month.key}.csv")


@staff_only
@require_GET
def everyone_csv(request):
    """Every user's month, in the page's order, and the totals last."""
    month, refused = _month_or_error(request)
    if refused:
        return refused
    everyone = report.for_everyone(month, request.GET.get("sort") or report.DEFAULT_SORT)
    return _csv(report.everyone_csv_rows(everyone), f"tailor-usage-everyone-{month.key}.csv")
