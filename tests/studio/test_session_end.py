"""An open websocket ends with its session: logging out, changing the password,
being deactivated and the session expiring each close it (code 4401).

Real sessions: a browser (Django's test client) signs in, and its socket
connects to the whole ASGI application with the browser's session cookie,
so AuthMiddlewareStack finds the user as it would for a page; the channel
layer is the test Redis.
"""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from datasets_app import services as datasets
from studio.asgi import application
from studio.sockets import SESSION_ENDED_CODE
from tests.builders import chat_jsonl, make_job, ready_sample, upload
from tests.live import run_in_own_loop
from tests.processes import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a much longer passphrase 2"


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def socket_of(browser: Client, path: str = "/ws/jobs/") -> WebsocketCommunicator:
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie)]
    return WebsocketCommunicator(application, path, headers=headers)


async def connected(socket: WebsocketCommunicator) -> WebsocketCommunicator:
    accepted, _ = await socket.connect(timeout=10)
    assert accepted
    return socket


async def close_code(socket: WebsocketCommunicator, timeout: float = 5) -> int:
    """The code the socket was closed with, skipping what the page was sent first."""
    while True:
        message = await socket.receive_output(timeout)
        if message["type"] == "websocket.close":
            return message.get("code")


async def still_open(socket: WebsocketCommunicator) -> bool:
    return await socket.receive_nothing(timeout=0.5)


def test_logging_out_closes_that_sessions_sockets_only(alice, bob):
    here, elsewhere, bobs = signed_in(alice), signed_in(alice), signed_in(bob)

    async def scenario():
        sockets = [await connected(socket_of(browser)) for browser in (here, elsewhere, bobs)]
        await sync_to_async(here.post)("/logout/")
        assert await close_code(sockets[0]) == SESSION_ENDED_CODE
        # Alice's other browser and Bob are still signed in, and still live.
        assert await still_open(sockets[1])
        assert await still_open(sockets[2])
        for socket in sockets[1:]:
            await socket.disconnect()

    run_in_own_loop(scenario)


def test_changing_the_password_closes_every_socket_of_the_user(alice, bob):
    here, elsewhere, bobs = signed_in(alice), signed_in(alice), signed_in(bob)

    def change_password():
        form = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD}  # fmt: skip
        assert here.post("/account/password/", form).status_code == 302

    async def scenario():
        sockets = [await connected(socket_of(browser)) for browser in (here, elsewhere, bobs)]
        await sync_to_async(change_password)()
        assert await close_code(sockets[0]) == SESSION_ENDED_CODE
        assert await close_code(sockets[1]) == SESSION_ENDED_CODE
        assert await still_open(sockets[2])
        # The browser that changed it connects again with its new session; the other cannot.
        again = await connected(socket_of(here))
        refused, _ = await socket_of(elsewhere).connect(timeout=10)
        assert not refused
        await again.disconnect()
        await sockets[2].disconnect()

    run_in_own_loop(scenario)


def test_deactivating_the_user_closes_their_sockets(alice):
    browser = signed_in(alice)

    def deactivate():
        alice.is_active = False
        alice.save()

    async def scenario():
        socket = await connected(socket_of(browser))
        await sync_to_async(deactivate)()
        assert await close_code(socket) == SESSION_ENDED_CODE

    run_in_own_loop(scenario)


def test_a_socket_closes_when_its_session_expires(alice):
    browser = signed_in(alice)
    session = browser.session
    session.set_expiry(2)
    session.save()

    async def scenario():
        socket = await connected(socket_of(browser))
        assert await still_open(socket)
        assert await close_code(socket, timeout=10) == SESSION_ENDED_CODE

    run_in_own_loop(scenario)


def test_every_live_pages_socket_ends_with_its_session(alice, demo_models):
    job = make_job(alice, ready_sample(alice))
    dataset = datasets.create_dataset(alice, upload=upload("n.jsonl", chat_jsonl(5)))
    paths = ["/ws/jobs/", f"/ws/jobs/{job.pk}/", f"/ws/datasets/{dataset.pk}/", "/ws/playground/"]
    browser = signed_in(alice)

    async def scenario():
        sockets = [await connected(socket_of(browser, path)) for path in paths]
        await sync_to_async(browser.post)("/logout/")
        assert [await close_code(socket) for socket in sockets] == [SESSION_ENDED_CODE] * 4

    run_in_own_loop(scenario)


def test_another_users_session_ending_is_not_heard(alice, bob):
    browser = signed_in(alice)

    async def scenario():
        socket = await connected(socket_of(browser))
        # Bob's logout is told to Bob's sockets only.
        await sync_to_async(lambda: signed_in(bob).post("/logout/"))()
        assert await still_open(socket)
        await socket.disconnect()

    run_in_own_loop(scenario)
