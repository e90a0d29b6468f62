"""API tokens: expiry, last use, rate limits (per user, and per token), and the tokens API.

Rate limits are counted in the tests' real Redis; the only things changed
are the clock (`timezone.now`), settings, and a counter's TTL in Redis, to
end a window without waiting a minute.
"""

import logging
import math
import re
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import openai
import pytest
import redis
from django.core.management import CommandError, call_command
from django.utils import timezone
from django.utils.html import escape
from rest_framework.test import APIClient

from studio.models import ApiToken
from studio.redis_server import free_port
from studio.services import rate_limits
from studio.services.rate_limits import rate_limit_key, user_rate_limit_key
from studio.services.tokens import create_token, digest_of

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EXPIRED_AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
EXPIRED_MESSAGE = (
    "This API token expired on 2026-01-02 at 03:04 UTC: create a new one on the Tokens page."
)
UNKNOWN_MESSAGE = "Invalid or revoked API token."


def api(secret: str | None = None) -> APIClient:
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def openai_get(client, path: str, secret: str):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


def counters(settings) -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_RATE_LIMIT_URL)


@pytest.fixture(autouse=True)
def fresh_user_windows(settings):
    """Users' windows start empty: a rolled-back test's user ids come back in
    the next test, and its counts would otherwise still be in Redis."""
    client = counters(settings)
    for key in client.scan_iter(user_rate_limit_key("*")):
        client.delete(key)


@pytest.fixture
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


# --- expiry: the page and the command -------------------------------------------------------


def test_the_tokens_page_offers_expiry_choices_with_90_days_chosen(alice_client):
    html = alice_client.get("/tokens/").content.decode()
    assert '<option value="never">Never</option>' in html
    assert '<option value="7">7 days</option>' in html
    assert '<option value="30">30 days</option>' in html
    assert '<option value="90" selected>90 days</option>' in html
    assert '<option value="365">1 year</option>' in html


@pytest.mark.parametrize(
    ("choice", "expires_at"),
    [("7", NOW + timedelta(days=7)), ("365", NOW + timedelta(days=365)), ("never", None)],
)
def test_a_token_made_on_the_page_expires_after_the_chosen_time(
    alice_client, frozen_now, choice, expires_at
):
    response = alice_client.post("/tokens/", {"name": "nightly", "expires_in": choice})
    assert response.status_code == 200
    token = ApiToken.objects.get(name="nightly")
    assert token.expires_at == expires_at
    assert token.rate_limit_per_minute is None


def test_the_tokens_page_refuses_an_expiry_it_does_not_offer(alice_client):
    response = alice_client.post("/tokens/", {"name": "nightly", "expires_in": "1000"})
    assert response.context["form"].errors == {
        "expires_in": ["Select a valid choice. 1000 is not one of the available choices."]
    }
    assert not ApiToken.objects.exists()


def test_the_tokens_page_sets_a_tokens_own_rate_limit(alice_client):
    alice_client.post(
        "/tokens/", {"name": "nightly", "expires_in": "30", "rate_limit_per_minute": "60"}
    )
    assert ApiToken.objects.get(name="nightly").rate_limit_per_minute == 60
    assert "60/min" in alice_client.get("/tokens/").content.decode()


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("101", "Must be at most 100, the studio's limit; an operator may set more."),
        ("0", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_the_tokens_page_only_lowers_the_studios_rate_limit(alice_client, settings, limit, message):
    settings.TAILOR_API_RATE_LIMIT = 100
    response = alice_client.post(
        "/tokens/", {"name": "nightly", "expires_in": "30", "rate_limit_per_minute": limit}
    )
    assert response.context["form"].errors == {"rate_limit_per_minute": [message]}
    assert escape(message) in response.content.decode()
    assert not ApiToken.objects.exists()


def test_the_tokens_page_says_when_each_token_expires(alice, alice_client):
    soon = create_token(alice, "soon", expires_at=timezone.now() + timedelta(days=12, hours=1))
    old = create_token(alice, "old", expires_at=EXPIRED_AT)
    forever = create_token(alice, "forever")
    html = alice_client.get("/tokens/").content.decode()

    def row(token):
        start = html.index(f'id="token-{token.token.pk}"')
        return html[start : html.index("</tr>", start)]

    assert "in 12 days" in row(soon)
    # Listed until revoked, marked in the warning style, so a failing script's owner sees why.
    assert (
        '<span class="badge badge-expired" data-testid="token-expired" '
        'title="2026-01-02 03:04 UTC">expired</span>'
    ) in row(old)
    assert "2026-01-02" in row(old)
    assert '<span class="muted">never</span>' in row(forever)
    assert "expired" not in row(soon) + row(forever)


def test_create_token_command_sets_expiry_and_rate_limit(alice, frozen_now):
    out = StringIO()
    call_command(
        "create_token", "alice", "--expires-in-days", "30", "--rate-limit", "5", stdout=out
    )
    token = ApiToken.objects.get(digest=digest_of(out.getvalue().strip()))
    assert token.expires_at == NOW + timedelta(days=30)
    assert token.rate_limit_per_minute == 5


def test_create_token_command_makes_tokens_that_never_expire_by_default(alice):
    out = StringIO()
    call_command("create_token", "alice", stdout=out)
    token = ApiToken.objects.get(digest=digest_of(out.getvalue().strip()))
    assert token.expires_at is None
    assert token.rate_limit_per_minute is None


def test_create_token_command_lets_an_operator_lift_the_limit(alice, settings):
    settings.TAILOR_API_RATE_LIMIT = 1
    out = StringIO()
    call_command("create_token", "alice", "--rate-limit", "0", stdout=out)
    secret = out.getvalue().strip()
    assert ApiToken.objects.get(digest=digest_of(secret)).rate_limit_per_minute == 0
    for _ in range(3):
        response = api(secret).get("/api/v1/me/")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--expires-in-days", "0", "--expires-in-days must be at least 1 and at most 3,650, not '0'."),
        ("--expires-in-days", "-3", "--expires-in-days must be at least 1 and at most 3,650, not '-3'."),
        ("--expires-in-days", "soon", "--expires-in-days must be a whole number, not 'soon'."),
        ("--expires-in-days", "3651", "--expires-in-days must be at least 1 and at most 3,650, not '3651'."),
        ("--rate-limit", "-1", "--rate-limit must be at least 0 and at most 1,000,000, not '-1'."),
        ("--rate-limit", "1.5", "--rate-limit must be a whole number, not '1.5'."),
    ],
)  # fmt: skip
def test_create_token_command_refuses_a_bad_number(alice, flag, value, message):
    with pytest.raises(CommandError) as caught:
        call_command("create_token", "alice", flag, value, stdout=StringIO())
    assert str(caught.value) == message
    assert not ApiToken.objects.exists()


# --- expired versus unknown -------------------------------------------------------------------


def test_an_expired_token_is_told_it_expired_and_when_on_the_native_api(alice):
    new = create_token(alice, "old", expires_at=EXPIRED_AT)
    response = api(new.secret).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == {
        "error": {"code": "authentication_failed", "message": EXPIRED_MESSAGE}
    }


def unknown_secret(alice, bob) -> str:
    return "tlr_not-a-real-token"


def revoked_secret(alice, bob) -> str:
    revoked = create_token(alice, "revoked")
    revoked.token.delete()
    return revoked.secret


def deactivated_owners_secret(alice, bob) -> str:
    # Expired too, but its owner is deactivated: nothing is revealed about it.
    deactivated = create_token(bob, "old", expires_at=EXPIRED_AT)
    bob.is_active = False
    bob.save()
    return deactivated.secret


@pytest.mark.parametrize(
    "secret_of",
    [
        pytest.param(unknown_secret, id="unknown"),
        pytest.param(revoked_secret, id="revoked"),
        pytest.param(deactivated_owners_secret, id="deactivated"),
    ],
)
def test_unknown_revoked_and_deactivated_tokens_get_one_message_on_the_native_api(
    alice, bob, secret_of
):
    response = api(secret_of(alice, bob)).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "authentication_failed", "message": UNKNOWN_MESSAGE}
    }


@pytest.mark.parametrize(
    ("expired", "message"),
    [
        pytest.param(True, EXPIRED_MESSAGE, id="expired"),
        pytest.param(False, UNKNOWN_MESSAGE, id="unknown"),
    ],
)
def test_expired_and_unknown_tokens_get_different_401s_on_the_openai_api(
    client, alice, expired, message
):
    secret = create_token(alice, "old", expires_at=EXPIRED_AT).secret if expired else "tlr_nope"
    response = openai_get(client, "/v1/models", secret)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_a_token_stops_working_the_moment_it_expires(alice, monkeypatch):
    new = create_token(alice, "week", expires_at=NOW + timedelta(days=7))
    monkeypatch.setattr(timezone, "now", lambda: NOW + timedelta(days=7, seconds=-1))
    assert api(new.secret).get("/api/v1/me/").status_code == 200
    monkeypatch.setattr(timezone, "now", lambda: NOW + timedelta(days=7))
    assert api(new.secret).get("/api/v1/me/").json()["error"]["message"] == (
        "This API token expired on 2026-11-30 at 12:00 UTC: create a new one on the Tokens page."
    )


# --- last used ----------------------------------------------------------------------------


def test_me_describes_the_token_used_and_when_it_was_last_used(alice, frozen_now):
    new = create_token(
        alice, "pipeline", expires_at=NOW + timedelta(days=90), rate_limit_per_minute=30
    )
    response = api(new.secret).get("/api/v1/me/")
    assert response.json()["token"] == {
        "id": str(new.token.pk),
        "name": "pipeline",
        "prefix": new.token.prefix,
        "created_at": new.token.created_at.isoformat().replace("+00:00", "Z"),
        "last_used_at": "2026-11-23T12:00:00Z",
        "expires_at": "2027-02-21T12:00:00Z",
        "expired": False,
        "rate_limit_per_minute": 30,
        "effective_rate_limit_per_minute": 30,
    }


def test_me_gives_no_token_for_a_browser_session(alice_client):
    assert alice_client.get("/api/v1/me/").json()["token"] is None


def test_last_used_is_recorded_at_most_once_a_minute_by_either_api(
    client, alice, alice_client, monkeypatch
):
    new = create_token(alice, "pipeline")
    assert '<span class="muted">never</span>' in alice_client.get("/tokens/").content.decode()

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    assert openai_get(client, "/v1/models", new.secret).status_code == 200
    new.token.refresh_from_db()
    assert new.token.last_used_at == NOW

    monkeypatch.setattr(timezone, "now", lambda: NOW + timedelta(seconds=59))
    api(new.secret).get("/api/v1/me/")
    new.token.refresh_from_db()
    assert new.token.last_used_at == NOW

    monkeypatch.setattr(timezone, "now", lambda: NOW + timedelta(seconds=60))
    listed = api(new.secret).get("/api/v1/tokens/").json()["results"]
    assert listed[0]["last_used_at"] == "2026-11-23T12:01:00Z"
    new.token.refresh_from_db()
    assert new.token.last_used_at == NOW + timedelta(seconds=60)


def test_the_tokens_page_shows_when_a_token_was_last_used(alice, alice_client):
    new = create_token(alice, "pipeline", expires_at=timezone.now() + timedelta(days=30))
    api(new.secret).get("/api/v1/me/")
    html = alice_client.get("/tokens/").content.decode()
    start = html.index(f'id="token-{new.token.pk}"')
    # humanize's naturaltime reads the real clock: "now", or seconds on a slow machine.
    assert re.search(
        r"<td>(now|\d+\xa0seconds? ago)</td>", html[start : html.index("</tr>", start)]
    )


# --- rate limits --------------------------------------------------------------------------


def test_the_native_api_answers_429_past_a_tokens_limit(alice):
    new = create_token(alice, "loop", rate_limit_per_minute=3)
    client = api(new.secret)
    for remaining in ("2", "1", "0"):
        response = client.get("/api/v1/me/")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == remaining

    response = client.get("/api/v1/datasets/")
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert response.headers["X-RateLimit-Remaining"] == "0"
    seconds = "1 second" if wait == 1 else f"{wait} seconds"
    assert response.json() == {
        "error": {
            "code": "throttled",
            "message": "Rate limit reached: this API token may make 3 requests a minute. "
            f"Try again in {seconds}.",
        }
    }


def test_the_openai_api_answers_429_in_openais_shape_past_a_tokens_limit(client, alice):
    new = create_token(alice, "loop", rate_limit_per_minute=2)
    for remaining in ("1", "0"):
        response = openai_get(client, "/v1/models", new.secret)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Remaining"] == remaining

    response = openai_get(client, "/v1/models", new.secret)
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 60
    seconds = "1 second" if wait == 1 else f"{wait} seconds"
    assert response.json() == {
        "error": {
            "message": "Rate limit reached: this API token may make 2 requests a minute. "
            f"Try again in {seconds}.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def test_a_users_tokens_share_one_window(client, alice, bob, settings):
    settings.TAILOR_API_RATE_LIMIT = 3
    first, second = create_token(alice, "first"), create_token(alice, "second")
    assert api(first.secret).get("/api/v1/me/").status_code == 200
    assert openai_get(client, "/v1/models", second.secret).status_code == 200
    response = api(second.secret).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "3"
    assert response.headers["X-RateLimit-Remaining"] == "0"

    response = api(first.secret).get("/api/v1/datasets/")
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    seconds = "1 second" if wait == 1 else f"{wait} seconds"
    assert response.json() == {
        "error": {
            "code": "throttled",
            "message": "Rate limit reached: your API tokens together may make 3 requests "
            f"a minute. Try again in {seconds}.",
        }
    }
    # Another user's window is their own.
    assert api(create_token(bob, "bobs").secret).get("/api/v1/me/").status_code == 200


def test_a_token_cannot_multiply_its_allowance_by_minting_tokens(alice, settings):
    settings.TAILOR_API_RATE_LIMIT = 2
    parent = create_token(alice, "parent")
    minted = api(parent.secret).post("/api/v1/tokens/", {"name": "child"}, format="json")
    assert minted.status_code == 201
    assert api(minted.json()["secret"]).get("/api/v1/me/").status_code == 200
    assert api(minted.json()["secret"]).get("/api/v1/me/").status_code == 429
    assert api(parent.secret).get("/api/v1/me/").status_code == 429


def test_a_tokens_own_limit_caps_it_within_its_users_window(alice):
    capped = create_token(alice, "capped", rate_limit_per_minute=2)
    other = create_token(alice, "other")
    assert [api(capped.secret).get("/api/v1/me/").status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    # The cap is the token's: the user's other tokens go on, in the user's window.
    response = api(other.secret).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "600"
    assert response.headers["X-RateLimit-Remaining"] == "596"


def test_both_apis_count_against_one_limit(client, alice):
    new = create_token(alice, "loop", rate_limit_per_minute=2)
    assert api(new.secret).get("/api/v1/me/").status_code == 200
    assert openai_get(client, "/v1/models", new.secret).status_code == 200
    assert api(new.secret).get("/api/v1/me/").status_code == 429
    assert openai_get(client, "/v1/models", new.secret).status_code == 429


def test_tokens_without_their_own_limit_get_the_studios(alice, settings):
    settings.TAILOR_API_RATE_LIMIT = 2
    new = create_token(alice, "loop")
    client = api(new.secret)
    assert [client.get("/api/v1/me/").status_code for _ in range(3)] == [200, 200, 429]


def test_a_studio_limit_of_0_means_unlimited(alice, settings):
    settings.TAILOR_API_RATE_LIMIT = 0
    new = create_token(alice, "loop")
    client = api(new.secret)
    for _ in range(5):
        response = client.get("/api/v1/me/")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers
    assert response.json()["token"]["effective_rate_limit_per_minute"] == 0


def test_browser_sessions_are_not_rate_limited(alice, alice_client, settings):
    settings.TAILOR_API_RATE_LIMIT = 1
    for _ in range(4):
        response = alice_client.get("/api/v1/me/")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers


def test_the_window_frees_when_its_minute_is_up(alice, settings):
    new = create_token(alice, "loop", rate_limit_per_minute=1)
    client = api(new.secret)
    assert client.get("/api/v1/me/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 429

    # Five seconds of the window left: Retry-After says so.
    counters(settings).pexpire(rate_limit_key(new.token), 5000)
    assert client.get("/api/v1/me/").headers["Retry-After"] == "5"

    # The window ends: a new one opens with this request.
    counters(settings).pexpire(rate_limit_key(new.token), 1)
    time.sleep(0.05)
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert 59_000 < counters(settings).pttl(rate_limit_key(new.token)) <= 60_000


def test_requests_pass_when_redis_cannot_be_reached(client, alice, settings, monkeypatch, caplog):
    settings.REDIS_RATE_LIMIT_URL = f"redis://127.0.0.1:{free_port()}/2"
    monkeypatch.setitem(rate_limits._last_warning, "at", -math.inf)
    new = create_token(alice, "loop", rate_limit_per_minute=1)
    with caplog.at_level(logging.WARNING, logger="studio.services.rate_limits"):
        for _ in range(3):
            response = api(new.secret).get("/api/v1/me/")
            assert response.status_code == 200
            assert "X-RateLimit-Limit" not in response.headers
            assert openai_get(client, "/v1/models", new.secret).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "studio.services.rate_limits"]
    # Once, not once a request.
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "API rate limits are not enforced: Redis cannot be reached (Error 111 connecting to"
    )


@pytest.mark.django_db(transaction=True)
def test_an_openai_client_gets_a_rate_limit_error(alice, live_server_url):
    new = create_token(alice, "loop", rate_limit_per_minute=1)
    client = openai.OpenAI(
        base_url=f"{live_server_url}/v1", api_key=new.secret, max_retries=0, timeout=30
    )
    first = client.models.with_raw_response.list()
    assert first.headers["X-RateLimit-Limit"] == "1"
    assert first.headers["X-RateLimit-Remaining"] == "0"

    with pytest.raises(openai.RateLimitError) as caught:
        client.models.list()
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 60


# --- the tokens API ----------------------------------------------------------------------


def test_the_tokens_api_lists_your_tokens_newest_first(alice, bob):
    older = create_token(alice, "older", expires_at=EXPIRED_AT)
    newer = create_token(alice, "newer")
    create_token(bob, "bobs")
    response = api(newer.secret).get("/api/v1/tokens/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [t["name"] for t in body["results"]] == ["newer", "older"]
    assert body["results"][1] == {
        "id": str(older.token.pk),
        "name": "older",
        "prefix": older.token.prefix,
        "created_at": older.token.created_at.isoformat().replace("+00:00", "Z"),
        "last_used_at": None,
        "expires_at": "2026-01-02T03:04:00Z",
        "expired": True,
        "rate_limit_per_minute": None,
        "effective_rate_limit_per_minute": 600,
    }


def test_the_tokens_api_creates_a_token_and_shows_its_secret_once(alice, alice_client):
    response = api(create_token(alice, "admin").secret).post(
        "/api/v1/tokens/", {"name": "ci", "rate_limit_per_minute": 10}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    token = ApiToken.objects.get(pk=body["id"])
    assert digest_of(body["secret"]) == token.digest
    assert body["name"] == "ci"
    assert body["rate_limit_per_minute"] == 10
    # 90 days unless asked otherwise, as on the page.
    assert abs(token.expires_at - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)
    assert api(body["secret"]).get("/api/v1/me/").json()["token"]["name"] == "ci"
    assert "secret" not in api(body["secret"]).get("/api/v1/tokens/").json()["results"][0]


def test_a_session_can_create_a_token_that_never_expires(alice_client):
    response = alice_client.post(
        "/api/v1/tokens/", {"name": "forever", "expires_in_days": None}, "application/json"
    )
    assert response.status_code == 201
    assert response.json()["expires_at"] is None


@pytest.mark.parametrize("asked", [None, 30], ids=["never", "in-30-days"])
def test_a_token_cannot_create_one_that_outlives_it(alice, asked):
    week = create_token(alice, "week", expires_at=timezone.now() + timedelta(days=7))
    response = api(week.secret).post(
        "/api/v1/tokens/", {"name": "child", "expires_in_days": asked}, format="json"
    )
    assert response.status_code == 201
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at == week.token.expires_at


def test_a_token_may_create_one_that_expires_before_it(alice):
    week = create_token(alice, "week", expires_at=timezone.now() + timedelta(days=7))
    response = api(week.secret).post(
        "/api/v1/tokens/", {"name": "shorter", "expires_in_days": 1}, format="json"
    )
    assert ApiToken.objects.get(pk=response.json()["id"]).expires_at < week.token.expires_at


@pytest.mark.parametrize(
    ("body", "code", "field", "message"),
    [
        ({"name": "ci", "expires_in_days": 0}, "min_value", "expires_in_days", "Ensure this value is greater than or equal to 1."),
        ({"name": "ci", "expires_in_days": 3651}, "max_value", "expires_in_days", "Ensure this value is less than or equal to 3650."),
        ({"name": "ci", "rate_limit_per_minute": 601}, "max_value", "rate_limit_per_minute", "must be at most 600, the studio's limit; an operator may set more."),
        ({"name": "ci", "rate_limit_per_minute": 0}, "min_value", "rate_limit_per_minute", "Ensure this value is greater than or equal to 1."),
        ({}, "required", "name", "This field is required."),
    ],
)  # fmt: skip
def test_the_tokens_api_refuses_a_bad_token(alice, body, code, field, message):
    secret = create_token(alice, "admin").secret
    response = api(secret).post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": code, "message": f"{field}: {message}", "field": field}
    }
    assert ApiToken.objects.count() == 1


def test_the_secret_is_never_cached_by_the_api_or_the_page(alice, alice_client):
    response = api(create_token(alice, "admin").secret).post(
        "/api/v1/tokens/", {"name": "ci"}, format="json"
    )
    assert response.status_code == 201
    assert "no-store" in response.headers["Cache-Control"]
    page = alice_client.post("/tokens/", {"name": "nightly", "expires_in": "30"})
    assert 'data-testid="new-secret"' in page.content.decode()
    assert "no-store" in page.headers["Cache-Control"]


TOO_MANY_TOKENS = (
    "You already have 2 API tokens, the most one account may have: "
    "revoke one you no longer use, then create this one."
)


def test_the_tokens_api_refuses_a_token_past_the_users_cap(alice, bob, settings):
    settings.TAILOR_MAX_TOKENS_PER_USER = 2
    secret = create_token(alice, "admin").secret
    assert api(secret).post("/api/v1/tokens/", {"name": "one"}, format="json").status_code == 201
    response = api(secret).post("/api/v1/tokens/", {"name": "two"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "conflict", "message": TOO_MANY_TOKENS}}
    assert ApiToken.objects.filter(user=alice).count() == 2
    # The cap is per user.
    assert (
        api(create_token(bob, "bobs").secret)
        .post("/api/v1/tokens/", {"name": "one"}, format="json")
        .status_code
        == 201
    )


def test_the_tokens_page_refuses_a_token_past_the_users_cap(alice, alice_client, settings):
    settings.TAILOR_MAX_TOKENS_PER_USER = 2
    create_token(alice, "one")
    create_token(alice, "two")
    response = alice_client.post("/tokens/", {"name": "three", "expires_in": "30"})
    assert response.status_code == 409
    assert (
        f'<p class="message message-error" role="status">{escape(TOO_MANY_TOKENS)}</p>'
    ) in response.content.decode()
    assert 'data-testid="new-secret"' not in response.content.decode()
    assert ApiToken.objects.filter(user=alice).count() == 2


def test_the_tokens_api_revokes_a_token(alice):
    admin = create_token(alice, "admin")
    doomed = create_token(alice, "doomed")
    response = api(admin.secret).delete(f"/api/v1/tokens/{doomed.token.pk}/")
    assert response.status_code == 204
    assert not ApiToken.objects.filter(pk=doomed.token.pk).exists()
    assert api(doomed.secret).get("/api/v1/me/").json()["error"]["message"] == UNKNOWN_MESSAGE


def test_bob_cannot_see_or_revoke_alices_tokens_through_the_api(alice, bob):
    alices = create_token(alice, "pipeline")
    bobs = create_token(bob, "bobs")
    assert [t["name"] for t in api(bobs.secret).get("/api/v1/tokens/").json()["results"]] == [
        "bobs"
    ]
    response = api(bobs.secret).delete(f"/api/v1/tokens/{alices.token.pk}/")
    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=alices.token.pk).exists()
    assert api(bobs.secret).delete("/api/v1/tokens/not-a-uuid/").status_code == 404
