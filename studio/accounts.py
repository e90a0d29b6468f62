"""The account page: a signed-in user changes their own password."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import password_validators_help_texts
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from studio.forms import ChangePasswordForm
from studio.models import ApiToken
from studio.services.accounts import PasswordChanged, change_password


def changed_message(changed: PasswordChanged) -> str:
    tokens = changed.tokens_revoked
    revoked = (
        ""
        if not tokens
        else f" Your {tokens} API token{'s were' if tokens > 1 else ' was'} revoked."
    )
    return f"Your password was changed, and every other browser signed out.{revoked}"


@sensitive_post_parameters()
@login_required
@never_cache
def password_change(request):
    form = ChangePasswordForm(request, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            changed = change_password(
                request,
                request.user,
                form.cleaned_data["new_password1"],
                revoke_tokens=form.cleaned_data["revoke_tokens"],
            )
            messages.success(request, changed_message(changed))
            return redirect("password-change")
        status = 429 if form.locked_out else 422
    else:
        status = 200
    context = {
        "form": form,
        "password_rules": password_validators_help_texts(),
        "token_count": ApiToken.objects.for_user(request.user).count(),
    }
    return render(request, "registration/password_change.html", context, status=status)
