"""Pages of the studio shell: dashboard, API tokens, health, the login lockout."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import AuthenticationFailed

from studio.authentication import ApiTokenAuthentication
from studio.forms import NewTokenForm
from studio.models import ApiToken
from studio.services.accounts import lockout_message
from studio.services.health import system_health, without_details
from studio.services.home import home_for
from studio.services.tokens import (
    TooManyTokens,
    access_token,
    create_token,
    expiry_after,
    revoke_token,
)


@login_required
def dashboard(request):
    """The analyst's home: their running jobs, results, waiting datasets and next step."""
    return render(request, "studio/dashboard.html", {"home": home_for(request.user)})


@login_required
@never_cache
def system_status(request):
    """The operators' status panel on the home page, loaded (and refreshed) by htmx."""
    if not request.user.is_staff:
        raise PermissionDenied
    return render(request, "studio/dashboard.html#system-status", {"health": system_health()})


@require_GET
@never_cache
def healthz(request):
    """200 when every part is up, else 503. Staff and API-token callers get
    each part's details; anyone else only whether it is up."""
    health = system_health()
    shown = health if _may_see_health_details(request) else without_details(health)
    return JsonResponse(shown, status=200 if health["ok"] else 503)


def _may_see_health_details(request) -> bool:
    """A staff member's session, or a valid API token (as the API checks it).
    A wrong token is not an error here: its caller is simply anonymous."""
    if request.user.is_staff:
        return True
    try:
        return ApiTokenAuthentication().authenticate(request) is not None
    except AuthenticationFailed:
        return False


@login_required
# The page may carry a new secret: no browser or proxy cache may keep it.
@never_cache
def tokens(request):
    form = NewTokenForm(request.POST or None)
    new_secret = None
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            new = create_token(
                request.user,
                form.cleaned_data["name"],
                expires_at=expiry_after(form.cleaned_data["expires_in"]),
                rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
            )
        except TooManyTokens as refused:
            messages.error(request, refused.message)
            status = 409
        else:
            # Shown in this response only: the secret is not stored anywhere.
            new_secret = new.secret
            form = NewTokenForm()
    context = {
        "form": form,
        "new_secret": new_secret,
        "tokens": ApiToken.objects.for_user(request.user),
        "default_rate_limit": settings.TAILOR_API_RATE_LIMIT,
    }
    return render(request, "studio/tokens.html", context, status=status)


@login_required
@require_POST
def revoke(request, token_id):
    token = access_token(request.user, token_id)
    revoke_token(token)
    messages.success(request, f"Token “{token.name}” revoked. Requests that carry it now fail.")
    return redirect("tokens")


def login_locked_out(request, original_response=None, credentials=None):
    """The login page with the lockout message, as 429 (AXES_LOCKOUT_CALLABLE).

    django-axes calls this for a refused attempt on /login/ and /admin/login/
    alike; both get this page, whose `next` leads back where the person was
    going. `original_response` and `credentials` are unused: axes's async
    path passes them in another order.
    """
    context = {
        "lockout_message": lockout_message(),
        "next": request.POST.get("next") or request.GET.get("next", ""),
    }
    return render(request, "registration/login.html", context, status=429)
