"""API tokens: hashed at rest, both header styles, revocation, expiry, ownership."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from studio.models import ApiToken
from studio.services.tokens import create_token, digest_of

pytestmark = pytest.mark.django_db


def api(secret: str | None = None, keyword: str = "Bearer") -> APIClient:
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"{keyword} {secret}")
    return client


def test_only_the_digest_of_a_token_is_stored(alice):
    new = create_token(alice, "pipeline")
    stored = ApiToken.objects.get(pk=new.token.pk)
    assert new.secret.startswith("tlr_")
    assert stored.digest == digest_of(new.secret)
    assert new.secret not in {stored.digest, stored.prefix, stored.name}
    assert new.secret.startswith(stored.prefix)


@pytest.mark.parametrize("keyword", ["Bearer", "Token", "bearer"])
def test_me_answers_with_the_tokens_owner_for_either_header_style(alice, keyword):
    new = create_token(alice, "pipeline")
    response = api(new.secret, keyword).get("/api/v1/me/")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "username": "alice",
        "email": "alice@example.com",
        "is_staff": False,
        "auth": "token",
        "token": body["token"],
    }
    assert body["token"]["name"] == "pipeline"
    assert body["token"]["prefix"] == new.token.prefix


def test_me_records_when_a_token_was_last_used(alice):
    new = create_token(alice, "pipeline")
    assert new.token.last_used_at is None
    api(new.secret).get("/api/v1/me/")
    new.token.refresh_from_db()
    assert new.token.last_used_at is not None


def test_me_answers_the_browser_session_too(alice_client):
    response = alice_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["auth"] == "session"


def test_me_refuses_a_request_without_credentials():
    response = api().get("/api/v1/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_me_refuses_an_unknown_token():
    response = api("tlr_not-a-real-token").get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "authentication_failed", "message": "Invalid or revoked API token."}
    }


def test_me_refuses_a_malformed_authorization_header(alice):
    response = api("two words", "Bearer").get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "authentication_failed",
            "message": "The Authorization header must be 'Bearer <token>' or 'Token <token>'.",
        }
    }


def test_an_expired_token_is_refused(alice):
    new = create_token(alice, "old", expires_at=timezone.now() - timedelta(seconds=1))
    assert api(new.secret).get("/api/v1/me/").status_code == 401


def test_a_deactivated_users_token_is_refused(alice):
    new = create_token(alice, "pipeline")
    alice.is_active = False
    alice.save()
    assert api(new.secret).get("/api/v1/me/").status_code == 401


def test_the_tokens_page_shows_a_new_secret_once(alice_client):
    response = alice_client.post("/tokens/", {"name": "nightly", "expires_in": "90"})
    assert response.status_code == 200
    token = ApiToken.objects.get(name="nightly")
    secret = response.context["new_secret"]
    assert digest_of(secret) == token.digest
    assert secret in response.content.decode()
    again = alice_client.get("/tokens/").content.decode()
    assert secret not in again
    assert token.prefix in again


def test_the_tokens_page_requires_a_name(alice_client):
    response = alice_client.post("/tokens/", {"name": ""})
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_revoked_token_stops_working(alice, alice_client):
    new = create_token(alice, "pipeline")
    response = alice_client.post(f"/tokens/{new.token.pk}/revoke/")
    assert response.status_code == 302
    assert not ApiToken.objects.filter(pk=new.token.pk).exists()
    assert api(new.secret).get("/api/v1/me/").status_code == 401


def test_bob_cannot_see_or_revoke_alices_token(alice, bob_client):
    new = create_token(alice, "pipeline")
    assert new.token.prefix not in bob_client.get("/tokens/").content.decode()
    assert bob_client.post(f"/tokens/{new.token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.filter(pk=new.token.pk).exists()


def test_create_token_command_prints_a_working_token(alice):
    out = StringIO()
    call_command("create_token", "alice", "--name", "cron", stdout=out)
    secret = out.getvalue().strip()
    assert ApiToken.objects.get(digest=digest_of(secret)).name == "cron"
    assert api(secret, "Token").get("/api/v1/me/").json()["username"] == "alice"


def test_create_token_command_names_an_unknown_user():
    with pytest.raises(CommandError, match=r"No user named 'nobody'\."):
        call_command("create_token", "nobody")
