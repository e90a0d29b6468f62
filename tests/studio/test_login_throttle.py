"""Password guessing: failed logins per username and per address, then a
lockout that ends by itself (django-axes, its database handler)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import AsyncClient, Client
from django.utils.html import escape
from rest_framework.test import APIClient

from studio.services.tokens import create_token
from tests.live import run_in_own_loop
from tests.processes import PASSWORD

pytestmark = pytest.mark.django_db

LOCKOUT_MESSAGE = (
    "Too many failed logins for this username or from this address. "
    "Wait 15 minutes, then log in again: each attempt before then restarts the wait. "
    "An operator can lift the lock sooner."
)


def log_in(client, username: str, password: str, *, path: str = "/login/", address="10.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, times: int, username: str = "alice", **where) -> list[int]:
    """Log in with a wrong password `times` times; the answers' status codes."""
    return [log_in(client, username, "wrong", **where).status_code for _ in range(times)]


def test_thirty_wrong_passwords_lock_the_account_and_the_right_one_is_refused(client, alice):
    # The tenth failure reaches the limit: it is answered with the lockout.
    assert fail(client, 30) == [200] * 9 + [429] * 21

    response = log_in(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert not logged_in(client)
    assert (
        f'<p class="message message-error" role="alert" data-testid="login-lockout">'
        f"{escape(LOCKOUT_MESSAGE)}</p>"
    ) in response.content.decode()


def test_the_lock_follows_the_username_to_another_address(client, alice):
    fail(client, 10, address="10.0.0.1")
    response = log_in(Client(), "alice", PASSWORD, address="10.0.0.2")
    assert response.status_code == 429


def test_one_address_guessing_many_usernames_is_locked_for_all(client, alice, bob):
    for number in range(10):
        log_in(client, f"guess-{number}", "wrong", address="10.0.0.9")
    response = log_in(Client(), "bob", PASSWORD, address="10.0.0.9")
    assert response.status_code == 429
    # Bob, from his own address, is not held back by someone else's guessing.
    other = Client()
    assert log_in(other, "bob", PASSWORD, address="10.0.0.3").status_code == 302
    assert logged_in(other)


def test_the_admin_login_counts_and_locks_too(client, alice):
    assert fail(client, 9, path="/admin/login/?next=/admin/") == [200] * 9
    response = log_in(client, "alice", "wrong", path="/admin/login/?next=/admin/")
    assert response.status_code == 429
    html = response.content.decode()
    assert escape(LOCKOUT_MESSAGE) in html
    # The page's form leads back to the admin once the lock is over.
    assert '<input type="hidden" name="next" value="/admin/">' in html
    assert log_in(client, "alice", PASSWORD).status_code == 429


def test_the_lock_ends_by_itself_once_the_wait_is_over(client, alice):
    fail(client, 10)
    assert log_in(client, "alice", PASSWORD).status_code == 429
    # Fifteen minutes and a second later (moving the last attempt back in time).
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= timedelta(minutes=15, seconds=1)
        attempt.save()
    response = log_in(client, "alice", PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)


def test_a_few_typos_do_not_lock_anyone_out(client, alice):
    assert fail(client, 9) == [200] * 9
    assert log_in(client, "alice", PASSWORD).status_code == 302
    assert logged_in(client)


def test_the_lockout_message_says_how_long_to_wait(client, alice, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    settings.AXES_FAILURE_LIMIT = 2
    fail(client, 1)
    response = log_in(client, "alice", "wrong")
    assert response.status_code == 429
    assert (
        escape(
            "Too many failed logins for this username or from this address. "
            "Wait 1 minute, then log in again: each attempt before then restarts the wait. "
            "An operator can lift the lock sooner."
        )
        in response.content.decode()
    )


def test_api_tokens_keep_working_while_their_owner_is_locked_out(client, alice):
    secret = create_token(alice, "pipeline").secret
    fail(client, 10)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api.get("/api/v1/me/", REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


@pytest.mark.django_db(transaction=True)
def test_the_lockout_page_is_the_same_under_asgi(alice):
    # uvicorn serves the studio through the middleware's async path, where
    # django-axes calls the lockout page with its arguments in another order.
    async def eleven_failures():
        client = AsyncClient()
        return [await client.post("/login/", {"username": "alice", "password": "wrong"})
                for _ in range(11)]  # fmt: skip

    # Its own loop, in its own thread: a browser test may have left one in this thread.
    responses = run_in_own_loop(eleven_failures)
    assert [r.status_code for r in responses] == [200] * 9 + [429] * 2
    assert escape(LOCKOUT_MESSAGE) in responses[-1].content.decode()
