"""Request bodies: a few MiB for everyone, the upload limit only for signed-in
callers of the upload routes, and a refusal before the body is read.

The ASGI application is driven in-process with a receive() that counts what
was taken from it, so "before the body is read" is measured, not assumed.
"""

import asyncio
import json

import pytest
from django.conf import settings

from studio.asgi import application
from studio.services.tokens import create_token
from tests.live import run_in_own_loop

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024**2
CHUNK = 64 * 1024


class Body:
    """receive(): `size` bytes in 64 KiB messages, counting the bytes taken."""

    def __init__(self, size: int, content: bytes = b""):
        self.content = content or b"x" * size
        self.taken = 0

    async def __call__(self):
        if self.taken >= len(self.content) and self.taken:
            # The client waits for its answer (Django listens for a disconnect).
            await asyncio.Event().wait()
        chunk = self.content[self.taken : self.taken + CHUNK]
        self.taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": self.taken < len(self.content)}


def post(path: str, body: Body, *, declare: bool = True, headers=()) -> dict:
    """POST `body` to `path` through the ASGI application: status, headers, body, bytes taken."""
    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1"),
            *([(b"content-length", str(len(body.content)).encode())] if declare else []),
            *headers,
        ],
    }  # fmt: skip
    run_in_own_loop(lambda: application(scope, body, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {
        "status": start["status"],
        "type": dict(start["headers"]).get(b"content-type", b"").decode(),
        "body": content,
        "taken": body.taken,
    }


def token_header(user) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {create_token(user, 'tests').secret}".encode())


SIGN_IN = (
    "The request body is larger than 4.0 MB, the most the studio reads from a caller "
    "that is not signed in; sign in (or send an API token) to upload a larger file."
)
TOO_LARGE = "The request body is larger than 4.0 MB, the most the studio accepts here."


@pytest.mark.parametrize("declare", [True, False], ids=["declared", "chunked"])
def test_anonymous_5_mib_bodies_are_refused_before_they_are_read(declare):
    assert 4 * MiB == settings.TAILOR_MAX_REQUEST_BYTES
    answers = {
        path: post(path, Body(5 * MiB), declare=declare)
        for path in ("/login/", "/api/v1/datasets/", "/v1/files", "/no/such/page/")
    }
    # A declared length is refused unread; a chunked body once it passes the limit.
    most = 0 if declare else 4 * MiB + CHUNK
    assert {path: (a["status"], a["taken"] <= most) for path, a in answers.items()} == {
        path: (413, True) for path in answers
    }
    assert json.loads(answers["/api/v1/datasets/"]["body"]) == {
        "error": {"code": "too_large", "message": SIGN_IN}
    }
    assert json.loads(answers["/v1/files"]["body"]) == {
        "error": {"message": SIGN_IN, "type": "invalid_request_error", "param": None,
                  "code": "request_too_large"}
    }  # fmt: skip
    for page in ("/login/", "/no/such/page/"):
        assert answers[page]["type"] == "text/html; charset=utf-8"
        assert answers[page]["body"].decode() == (
            "<!doctype html><title>Request too large</title>"
            f"<h1>Request too large</h1><p>{TOO_LARGE}</p>"
        )


def test_a_signed_in_caller_gets_the_small_limit_off_the_upload_routes(alice):
    answer = post("/api/v1/jobs/", Body(5 * MiB), headers=[token_header(alice)])
    assert (answer["status"], answer["taken"]) == (413, 0)
    assert json.loads(answer["body"]) == {"error": {"code": "too_large", "message": TOO_LARGE}}


def test_a_session_cookie_counts_only_when_its_session_is_signed_in(alice, client):
    client.force_login(alice)
    signed_in = client.cookies[settings.SESSION_COOKIE_NAME].value
    cookie = f"{settings.SESSION_COOKIE_NAME}={signed_in}".encode()
    # Read to the end, then refused by the page's CSRF check: not by the size guard.
    answer = post("/datasets/upload/", Body(5 * MiB), headers=[(b"cookie", cookie)])
    assert (answer["status"], answer["taken"]) == (403, 5 * MiB)

    forged = f"{settings.SESSION_COOKIE_NAME}={'x' * 32}".encode()
    answer = post("/datasets/upload/", Body(5 * MiB), headers=[(b"cookie", forged)])
    assert (answer["status"], answer["taken"]) == (413, 0)


def multipart(filename: str, content: bytes) -> tuple[bytes, bytes]:
    boundary = "tailor-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}".encode()


def test_an_authenticated_upload_just_under_the_upload_limit_is_taken(alice, settings):
    settings.DATASET_MAX_UPLOAD_BYTES = 6 * MiB
    row = b'{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}\n'
    content = row * ((6 * MiB - 1) // len(row))
    assert 6 * MiB - len(row) < len(content) < 6 * MiB
    body, content_type = multipart("chat.jsonl", content)
    authorization = token_header(alice)
    answer = post("/api/v1/datasets/", Body(0, body),
                  headers=[authorization, (b"content-type", content_type)])  # fmt: skip
    assert answer["status"] == 201, answer["body"]
    assert json.loads(answer["body"])["size_bytes"] == len(content)

    # Past the limit and the form's allowance, the same caller is refused unread.
    over, content_type = multipart("chat.jsonl", b"x" * (7 * MiB + 1))
    answer = post("/api/v1/datasets/", Body(0, over),
                  headers=[authorization, (b"content-type", content_type)])  # fmt: skip
    assert (answer["status"], answer["taken"]) == (413, 0)
    assert json.loads(answer["body"]) == {
        "error": {"code": "file_too_large", "field": "file",
                  "message": "The file is larger than the upload limit of 6.0 MB."}
    }  # fmt: skip
