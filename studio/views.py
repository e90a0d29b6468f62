"""Pages of the studio shell: dashboard, API tokens, health."""

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
from studio.services.tokens import access_token, create_token, expiry_after, revoke_token


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
def tokens(request):
    form = NewTokenForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        new = create_token(
            request.user,
            form.cleaned_data["name"],
            expires_at=expiry_after(form.cleaned_data["expires_in"]),
            rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
        )
        # Shown in this response only: the secret is not stored anywhere.
        new_secret = new.secret
        form = NewTokenForm()
    context = {
        "form": form,
        "new_secret": new_secret,
        "tokens": ApiToken.objects.for_user(request.user),
        "default_rate_limit": settings.TAILOR_API_RATE_LIMIT,
    }
    return render(request, "studio/tokens.html", context)


@login_required
@require_POST
def revoke(request, token_id):
    token = access_token(request.user, token_id)
    revoke_token(token)
    messages.success(request, f"Token “{token.name}” revoked. Requests that carry it now fail.")
    return redirect("tokens")
