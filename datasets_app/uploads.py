"""Request body limits, enforced before and while the bytes arrive.

Two limits:
- `TAILOR_MAX_REQUEST_BYTES` (a few MiB) for every request, and
- `DATASET_MAX_UPLOAD_BYTES` (a GiB) for the upload routes (UPLOAD_ROUTES),
  and only when the caller is signed in (a session cookie of a logged-in
  session, or a valid API token).

Two guards enforce them:
- `BodySizeLimit`, an ASGI wrapper, answers 413 before Django reads a body
  whose Content-Length is over the caller's limit, and cuts off a chunked
  body as soon as it passes it. Who the caller is is looked up only for a
  body to an upload route that passes the small limit, so an anonymous
  request costs no database query and at most the small limit in reading;
- `SizeLimitedUploadHandler`, Django's file-upload hook, stops a file that
  grows past the upload limit while it is being written to a temporary file.
"""

import html
import json
from importlib import import_module
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http.cookie import parse_cookie
from django.urls import Resolver404, resolve

from jobs.human import limit_bytes
from studio.services import disk

# Multipart framing and the other form fields travel with the file.
MULTIPART_OVERHEAD = 1024 * 1024
# The URL names of the routes that take a dataset file.
UPLOAD_ROUTES = frozenset({"dataset-upload", "api-dataset-list", "openai-files"})
AUTH_KEYWORDS = (b"bearer", b"token")

# Why a body was refused -> its sentence; "{limit}" is the limit in words.
REFUSALS = {
    "file_too_large": "The file is larger than the upload limit of {limit}.",
    "sign_in_to_upload": (
        "The request body is larger than {limit}, the most the studio reads from a caller "
        "that is not signed in; sign in (or send an API token) to upload a larger file."
    ),
    "body_too_large": "The request body is larger than {limit}, the most the studio accepts here.",
}


def too_large_message() -> str:
    return REFUSALS["file_too_large"].format(limit=limit_bytes(settings.DATASET_MAX_UPLOAD_BYTES))


class SizeLimitedUploadHandler(TemporaryFileUploadHandler):
    def new_file(self, *args, **kwargs):
        self.received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.DATASET_MAX_UPLOAD_BYTES:
            self.request.upload_too_large = True
            self.file.close()  # the temporary file is removed with it
            raise StopUpload(connection_reset=False)
        try:
            return super().receive_data_chunk(raw_data, start)
        except OSError as exc:
            # The temporary file's disk is full. Stopping here (not raising)
            # matters: the CSRF check reads the body before any view runs.
            if not disk.is_disk_full(exc):
                raise
            self.request.upload_disk_full = True
            self.file.close()
            raise StopUpload(connection_reset=False) from exc


def is_upload_route(path_info: str) -> bool:
    try:
        return resolve(path_info).url_name in UPLOAD_ROUTES
    except Resolver404:
        return False


def _signed_in(headers: dict[bytes, bytes]) -> bool:
    """Whether the request carries a valid API token or a logged-in session's cookie.

    Queries the database: call it through sync_to_async. Writes nothing to
    a session (the request itself flushes or rotates it); a token's
    last_used_at is updated as the request's own authentication would.
    """
    from django.contrib.auth import get_user

    from studio.services.tokens import TokenRefused, authenticate_secret

    parts = headers.get(b"authorization", b"").split()
    if len(parts) == 2 and parts[0].lower() in AUTH_KEYWORDS:
        try:
            authenticate_secret(parts[1].decode("ascii"))
        except (TokenRefused, UnicodeDecodeError):
            return False
        return True
    cookies = parse_cookie(headers.get(b"cookie", b"").decode("latin-1"))
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    session = _SessionView(store.items())
    return get_user(SimpleNamespace(session=session)).is_authenticated


class _SessionView(dict):
    """A session's data for get_user(), which may flush or rotate the session it
    checks: here neither is saved, and a flushed session is not signed in."""

    def flush(self):
        self.clear()

    def cycle_key(self):
        pass


class BodySizeLimit:
    """ASGI middleware refusing HTTP bodies over the caller's limit with 413."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        path_info = path[len(root) :] if root and path.startswith(root) else path
        headers = dict(scope.get("headers") or [])
        small = settings.TAILOR_MAX_REQUEST_BYTES
        upload_route = is_upload_route(path_info)
        # [limit, why a body past it is refused]; the large limit once the caller is known.
        allowance = [small, "sign_in_to_upload" if upload_route else "body_too_large"]
        caller_known = not upload_route

        async def learn_caller():
            nonlocal caller_known
            caller_known = True
            if await sync_to_async(_signed_in)(headers):
                allowance[:] = [settings.DATASET_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD,
                                "file_too_large"]  # fmt: skip

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > small:
            if not caller_known:
                await learn_caller()
            if int(declared) > allowance[0]:
                return await self._refuse(path_info, headers, *allowance, send)

        received = 0
        refused = False

        async def limited_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > allowance[0] and not caller_known:
                    await learn_caller()
                if received > allowance[0]:
                    refused = True
                    raise _BodyTooLarge
            return message

        try:
            return await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            if refused:
                return await self._refuse(path_info, headers, *allowance, send)
            raise

    async def _refuse(self, path_info: str, headers: dict, limit: int, why: str, send):
        file = why == "file_too_large"
        if file:  # the file's limit, not the form's around it
            limit -= MULTIPART_OVERHEAD
        message = REFUSALS[why].format(limit=limit_bytes(limit))
        field = "file" if file else None
        if path_info.startswith("/v1/"):  # the OpenAI-compatible API's shape
            error = {"message": message, "type": "invalid_request_error", "param": field,
                     "code": why if file else "request_too_large"}  # fmt: skip
            content_type, body = b"application/json", json.dumps({"error": error}).encode()
        elif path_info.startswith("/api/") or headers.get(b"hx-request") == b"true":
            # The native API's shape (studio/api_errors.py), which the upload
            # page's script also reads its message from.
            error = {"code": why if file else "too_large", "message": message}
            if field:
                error["field"] = field
            content_type, body = b"application/json", json.dumps({"error": error}).encode()
        else:
            content_type = b"text/html; charset=utf-8"
            body = (
                "<!doctype html><title>Request too large</title>"
                f"<h1>Request too large</h1><p>{html.escape(message)}</p>"
            ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
