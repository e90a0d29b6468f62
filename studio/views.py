"""Pages of the studio shell: dashboard, API tokens, health, the login lockout."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from studio.forms import NewTokenForm
from studio.models import ApiToken
from studio.services.health import system_health
from studio.services.tokens import (
    TooManyTokens,
    access_token,
    create_token,
    expiry_after,
    revoke_token,
)


@login_required
def dashboard(request):
    return render(request, "studio/dashboard.html")


@login_required
@never_cache
def system_status(request):
    """The dashboard's status panel, loaded (and refreshed) by htmx."""
    return render(request, "studio/dashboard.html#system-status", {"health": system_health()})


@require_GET
@never_cache
def healthz(request):
    health = system_health()
    return JsonResponse(health, status=200 if health["ok"] else 503)


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


def lockout_message() -> str:
    # From axes's own setting, so the sentence says what is enforced.
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    wait = "1 minute" if minutes == 1 else f"{minutes:,} minutes"
    return (
        "Too many failed logins for this username or from this address. "
        f"Wait {wait}, then log in again: each attempt before then restarts the wait. "
        "An operator can lift the lock sooner."
    )


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
