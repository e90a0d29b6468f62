"""Upload size limits, enforced while the bytes arrive.

Two guards share one limit (`DATASET_MAX_UPLOAD_BYTES`):
- `BodySizeLimit`, an ASGI wrapper, answers 413 before Django reads a body
  whose Content-Length is over the limit, and cuts off a chunked body as
  soon as it passes it;
- `SizeLimitedUploadHandler`, Django's file-upload hook, stops a file that
  grows past the limit while it is being written to a temporary file.
"""

import json

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat

from studio.services import disk

# Multipart framing and the other form fields travel with the file.
MULTIPART_OVERHEAD = 1024 * 1024


def too_large_message() -> str:
    limit = filesizeformat(settings.DATASET_MAX_UPLOAD_BYTES).replace("\xa0", " ")
    return f"The file is larger than the upload limit of {limit}."


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


class BodySizeLimit:
    """ASGI middleware refusing HTTP bodies over the upload limit with 413."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.DATASET_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._refuse(scope, send)

        received = 0
        refused = False

        async def limited_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise _BodyTooLarge
            return message

        try:
            return await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            if refused:
                return await self._refuse(scope, send)
            raise

    async def _refuse(self, scope, send):
        if scope.get("path", "").startswith("/v1/"):  # the OpenAI-compatible API's shape
            error = {"message": too_large_message(), "type": "invalid_request_error",
                     "param": "file", "code": "file_too_large"}  # fmt: skip
        else:  # the native API's (studio/api_errors.py)
            error = {"code": "file_too_large", "message": too_large_message(), "field": "file"}
        body = json.dumps({"error": error}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
