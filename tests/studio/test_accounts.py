"""Changing one's own password, on the account page and through the API: the
current password is checked as a login is, every other session ends (its
row is deleted), API tokens are revoked on request, and it is logged. Also
the session age setting."""

import logging
import os
import subprocess
import sys

import pytest
from axes.models import AccessAttempt
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils.html import escape
from rest_framework.test import APIClient

from studio.models import ApiToken
from studio.services.tokens import create_token
from tests.api_errors import error_message, field_errors
from tests.processes import PASSWORD, ROOT

pytestmark = pytest.mark.django_db

PAGE = "/account/password/"
API = "/api/v1/me/password/"
NEW_PASSWORD = "a much longer passphrase 2"
INCORRECT = "That is not your current password: type it again."
LOCKOUT_MESSAGE = (
    "Too many failed logins for this username or from this address. "
    "Wait 15 minutes, then log in again: each attempt before then restarts the wait. "
    "An operator can lift the lock sooner."
)


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def is_signed_in(browser: Client) -> bool:
    return browser.get("/").status_code == 200


def change(browser: Client, *, current=PASSWORD, new=NEW_PASSWORD, again=None, revoke=False):
    form = {"old_password": current, "new_password1": new, "new_password2": again or new}
    if revoke:
        form["revoke_tokens"] = "on"
    return browser.post(PAGE, form)


def token_api(user) -> tuple[APIClient, str]:
    secret = create_token(user, "script").secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client, secret


def can_log_in(username: str, password: str) -> bool:
    return Client().post("/login/", {"username": username, "password": password}).status_code == 302


# --- the page -------------------------------------------------------------------------


def test_the_account_menu_leads_to_the_password_page(alice):
    browser = signed_in(alice)
    html = browser.get("/").content.decode()
    assert f'<a href="{PAGE}" class="secondary">Password</a>' in html
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert page["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
    html = page.content.decode()
    assert "<h1>Change your password</h1>" in html
    assert f'<a href="{PAGE}" class="secondary" aria-current="page">Password</a>' in html
    for label in ("Current password", "New password", "New password, again"):
        assert f">{label}\n" in html
    # The studio's password rules, said before they refuse anything.
    assert "Your password must contain at least 8 characters." in html


def test_a_visitor_who_is_not_signed_in_is_sent_to_log_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={PAGE}"


def test_changing_it_keeps_this_browser_signed_in_and_ends_every_other_session(alice, bob):
    here, elsewhere, bobs = signed_in(alice), signed_in(alice), signed_in(bob)
    old_key = here.session.session_key
    assert Session.objects.count() == 3

    response = change(here)
    assert response.status_code == 302
    assert response["Location"] == PAGE
    page = here.get(PAGE).content.decode()
    assert "Your password was changed, and every other browser signed out." in page

    # This browser goes on, under a new session key; the other one is gone, row and all.
    assert is_signed_in(here)
    assert here.session.session_key != old_key
    assert not is_signed_in(elsewhere)
    assert not Session.objects.filter(session_key=old_key).exists()
    assert Session.objects.count() == 2  # here's new session and bob's
    assert is_signed_in(bobs)
    assert can_log_in("alice", NEW_PASSWORD)
    assert not can_log_in("alice", PASSWORD)


def test_tokens_stay_unless_revoking_them_is_asked(alice, bob):
    create_token(alice, "nightly")
    assert change(signed_in(alice)).status_code == 302
    assert ApiToken.objects.filter(user=alice).count() == 1


def test_revoking_the_tokens_revokes_all_of_the_users_and_nobody_elses(alice, bob):
    alices, _ = token_api(alice)
    create_token(alice, "nightly")
    bobs, _ = token_api(bob)
    browser = signed_in(alice)
    assert "Also revoke all my API tokens (2)" in browser.get(PAGE).content.decode()

    response = change(browser, revoke=True)
    assert response.status_code == 302
    page = browser.get(PAGE).content.decode()
    assert (
        "Your password was changed, and every other browser signed out. "
        "Your 2 API tokens were revoked."
    ) in page
    assert not ApiToken.objects.filter(user=alice).exists()
    assert alices.get("/api/v1/me/").status_code == 401
    assert bobs.get("/api/v1/me/").status_code == 200


def test_a_wrong_current_password_changes_nothing_and_counts_as_a_failed_login(alice):
    browser = signed_in(alice)
    response = change(browser, current="not my password")
    assert response.status_code == 422
    html = response.content.decode()
    assert (
        f'<small id="id_old_password-error" role="alert" data-testid="old-password-error">'
        f"{escape(INCORRECT)}</small>"
    ) in html
    assert can_log_in("alice", PASSWORD)
    assert is_signed_in(browser)
    assert AccessAttempt.objects.get(username="alice").failures_since_start == 1


def test_guessing_the_current_password_locks_as_guessing_at_login_does(alice):
    browser = signed_in(alice)
    answers = [change(browser, current=f"guess {n}").status_code for n in range(10)]
    # The tenth failure reaches the limit: it is answered with the lockout.
    assert answers == [422] * 9 + [429]
    response = change(browser)
    assert response.status_code == 429
    assert escape(LOCKOUT_MESSAGE) in response.content.decode()
    # Even the right one: the password is unchanged, and logging in is locked too.
    assert Client().post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 429
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_the_new_password_must_follow_the_rules_and_be_typed_twice_alike(alice):
    browser = signed_in(alice)
    short = change(browser, new="tiny")
    assert short.status_code == 422
    assert (
        escape("This password is too short. It must contain at least 8 characters.")
        in short.content.decode()
    )
    mismatch = change(browser, again="another long passphrase")
    assert mismatch.status_code == 422
    assert escape("The two password fields didn’t match.") in mismatch.content.decode()
    assert can_log_in("alice", PASSWORD)


def test_the_change_is_logged_with_the_sessions_and_tokens_it_ended(alice, caplog):
    create_token(alice, "nightly")
    signed_in(alice)
    with caplog.at_level(logging.INFO):
        change(signed_in(alice), revoke=True)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("studio.services")]
    assert lines == [
        "Ended 2 session(s) of user alice: password changed",
        "User alice changed their password; 1 API token(s) revoked",
    ]


def test_an_operator_setting_a_password_or_deactivating_a_user_ends_their_sessions(alice, bob):
    browser, bobs = signed_in(alice), signed_in(bob)
    alice.set_password(NEW_PASSWORD)  # as the admin's form and `manage.py changepassword` do
    alice.save()
    assert not is_signed_in(browser)
    assert is_signed_in(bobs)

    browser = signed_in(alice)
    alice.is_active = False
    alice.save()
    assert not Session.objects.filter(session_key=browser.session.session_key).exists()
    assert is_signed_in(bobs)


def test_logging_in_and_saving_other_fields_end_no_session(alice):
    browser = signed_in(alice)
    alice.first_name = "Alice"
    alice.save()
    Client().post("/login/", {"username": "alice", "password": PASSWORD})
    assert is_signed_in(browser)


# --- the API --------------------------------------------------------------------------


def test_the_api_changes_the_password_with_the_current_one(alice):
    api, _ = token_api(alice)
    browser = signed_in(alice)
    response = api.post(API, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"tokens_revoked": 0}
    assert not is_signed_in(browser)
    assert can_log_in("alice", NEW_PASSWORD)
    # A token is not a session: it keeps working unless revoking was asked.
    assert api.get("/api/v1/me/").status_code == 200


def test_the_api_revokes_every_token_on_request_the_one_it_was_called_with_too(alice):
    api, _ = token_api(alice)
    create_token(alice, "nightly")
    response = api.post(
        API,
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "revoke_tokens": True},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {"tokens_revoked": 2}
    assert api.get("/api/v1/me/").status_code == 401


def test_the_api_keeps_a_session_caller_signed_in(alice):
    api = APIClient()
    api.force_login(alice)
    response = api.post(API, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert api.get("/api/v1/me/").json()["auth"] == "session"


def test_the_api_refuses_a_wrong_current_password_and_a_weak_new_one(alice):
    api, _ = token_api(alice)
    wrong = api.post(API, {"current_password": "nope", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == {
        "code": "password_incorrect",
        "message": f"current_password: {INCORRECT}",
        "field": "current_password",
    }
    weak = api.post(API, {"current_password": PASSWORD, "new_password": "12345678"})
    assert weak.status_code == 400
    assert field_errors(weak) == {
        "new_password": [
            "This password is too common.",
            "This password is entirely numeric.",
        ]
    }
    assert can_log_in("alice", PASSWORD)


def test_the_api_answers_a_lockout_in_its_own_shape(alice):
    api, _ = token_api(alice)
    answers = [
        api.post(API, {"current_password": f"guess {n}", "new_password": NEW_PASSWORD})
        for n in range(10)
    ]
    assert [a.status_code for a in answers] == [400] * 9 + [429]
    locked = api.post(API, {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert locked.status_code == 429
    assert locked.json() == {"error": {"code": "locked_out", "message": LOCKOUT_MESSAGE}}
    assert error_message(answers[-1]) == LOCKOUT_MESSAGE


def test_the_api_needs_a_signed_in_caller(client):
    response = APIClient().post(API, {"current_password": "x", "new_password": NEW_PASSWORD})
    assert response.status_code == 401


# --- session age ----------------------------------------------------------------------


def test_a_login_lasts_the_configured_session_age(alice, settings):
    settings.SESSION_COOKIE_AGE = 3 * 3600
    response = Client().post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies["sessionid"]["max-age"] == 3 * 3600


def test_the_session_age_is_read_in_hours_from_the_environment(tmp_path):
    probe = "from django.conf import settings; print(settings.SESSION_COOKIE_AGE)"
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="studio.settings",
        VAR_DIR=str(tmp_path),
        TAILOR_SESSION_AGE_HOURS="12",
    )
    run = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {probe}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == str(12 * 3600)
