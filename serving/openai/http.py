"""HTTP and errors of the OpenAI-compatible API under /v1/, shared by every endpoint.

Scripts and OpenAI clients send a personal API token (`Authorization: Bearer
tlr_…`); browser sessions are not accepted here, because these views are
exempt from CSRF. Every error has OpenAI's shape, {"error": {"message",
"type", "param", "code"}}, with `param` named as the client named it; the
message is a plain sentence, and a failed generation's exception is added
as `detail` for staff tokens only.

`openai_endpoint` makes a view a /v1/ endpoint (methods, token, errors);
`OpenAIError` is an error answer raised anywhere below one, and
`RequestError` the same refusal as the services (objects, fine-tuning) raise
it, which `answered_in_openai_shape` turns into the former (and a per-user
limit's QuotaExceeded into a 403 of type `insufficient_quota`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from functools import wraps
from inspect import iscoroutinefunction

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from quotas.services.limits import QuotaExceeded
from studio.services.rate_limits import Quota, count_request
from studio.services.tokens import TokenRefused, authenticate_secret

MAX_BODY_BYTES = 1024 * 1024
AUTH_KEYWORDS = ("bearer", "token")


# --- errors ------------------------------------------------------------------------------


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    detail: str = "",
) -> dict:
    """OpenAI's error shape; `detail` (the exception behind it) only when given,
    which is for staff only."""
    error = {"message": message, "type": type, "param": param, "code": code}
    if detail:
        error["detail"] = detail
    return {"error": error}


def openai_error(status: int, message: str, **fields) -> JsonResponse:
    """A JSON response in OpenAI's error shape (`fields` as OpenAIError's)."""
    return OpenAIError(status, message, **fields).response()


class OpenAIError(Exception):
    """An error answer raised anywhere below a /v1/ view; `openai_endpoint`
    answers it with `response()`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict | None = None,
        detail: str = "",
    ):
        self.status, self.message = status, message
        self.type, self.param, self.code = type, param, code
        self.headers, self.detail = headers, detail
        super().__init__(message)

    @property
    def body(self) -> dict:
        return error_body(
            self.message, type=self.type, param=self.param, code=self.code, detail=self.detail
        )

    def response(self) -> JsonResponse:
        return JsonResponse(self.body, status=self.status, headers=self.headers)


class RequestError(Exception):
    """A request that cannot be answered as asked, in OpenAI's terms: what the
    services (objects, fine-tuning) raise; `answered_in_openai_shape` makes it
    an OpenAIError."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None):  # fmt: skip
        self.status, self.message, self.param, self.code = status, message, param, code
        super().__init__(message)


@contextmanager
def answered_in_openai_shape():
    """A RequestError raised inside becomes OpenAIError, which the endpoint answers."""
    try:
        yield
    except RequestError as exc:
        raise OpenAIError(exc.status, exc.message, param=exc.param, code=exc.code) from None
    except QuotaExceeded as exc:  # a per-user limit (quotas/)
        raise OpenAIError(403, exc.message, type="insufficient_quota", code=exc.code) from None


# --- authentication and the request body --------------------------------------------------


def _unauthorized(message: str) -> OpenAIError:
    return OpenAIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def _rate_limited(quota: Quota) -> OpenAIError:
    # OpenAI's own shape for this refusal; its clients retry after Retry-After.
    return OpenAIError(
        429,
        quota.message,
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(quota.retry_after)},
    )


def authenticate(request):
    """The user whose API token the request carries; OpenAIError: 401 otherwise,
    429 past the token's rate limit.

    Side effects: the token's last use is recorded (see `authenticate_secret`),
    the request is counted against its limit, and the count is left on the
    request for the X-RateLimit-* headers (studio.middleware).
    """
    parts = request.headers.get("Authorization", "").split()
    if not parts:
        raise _unauthorized(
            "Send an API token in an 'Authorization: Bearer <token>' header "
            "(create one on the Tokens page)."
        )
    if parts[0].lower() not in AUTH_KEYWORDS or len(parts) != 2:
        raise _unauthorized("The Authorization header must be 'Bearer <token>' or 'Token <token>'.")
    try:
        user, token = authenticate_secret(parts[1])
    except TokenRefused as exc:
        raise _unauthorized(exc.message) from None
    quota = count_request(token)
    if quota is not None:
        request.rate_limit = quota
        if quota.exceeded:
            raise _rate_limited(quota)
    # As DRF does: what reads the request's user (the audit log) finds the token's.
    request.user = user
    return user


def _too_large() -> OpenAIError:
    return OpenAIError(413, "The request body is larger than 1 MiB.", code="request_too_large")


def read_json_body(request) -> dict:
    """The request's JSON object; OpenAIError (400, or 413 past MAX_BODY_BYTES)."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    try:
        raw = request.body
    except RequestDataTooBig:
        raise _too_large() from None
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    if not raw.strip():
        raise OpenAIError(400, "The request body is empty: send a JSON object.")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise OpenAIError(
            400, "The request body is not valid JSON: it is not UTF-8 text."
        ) from None
    except json.JSONDecodeError as exc:
        raise OpenAIError(
            400,
            f"The request body is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno}).",
        ) from None
    if not isinstance(data, dict):
        raise OpenAIError(400, f"The request body must be a JSON object, not {_json_kind(data)}.")
    return data


def _json_kind(value) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


# --- endpoints -----------------------------------------------------------------------------


def _refuse_method(request, methods: tuple[str, ...]):
    return openai_error(
        405,
        f"{request.method} {request.path} is not supported: use {' or '.join(methods)}.",
        code="method_not_allowed",
        headers={"Allow": ", ".join(methods)},
    )


def openai_endpoint(*methods: str):
    """A /v1/ view: CSRF-exempt, these methods only (405), token required (401),
    OpenAIError raised inside answered in OpenAI's shape. The view receives the
    authenticated user after the request. Works for sync and async views."""

    def decorate(view):
        if iscoroutinefunction(view):

            @wraps(view)
            async def endpoint(request, *args, **kwargs):
                if request.method not in methods:
                    return _refuse_method(request, methods)
                try:
                    user = await sync_to_async(authenticate)(request)
                    return await view(request, user, *args, **kwargs)
                except OpenAIError as exc:
                    return exc.response()

        else:

            @wraps(view)
            def endpoint(request, *args, **kwargs):
                if request.method not in methods:
                    return _refuse_method(request, methods)
                try:
                    return view(request, authenticate(request), *args, **kwargs)
                except OpenAIError as exc:
                    return exc.response()

        return csrf_exempt(endpoint)

    return decorate


@csrf_exempt
def unknown_endpoint(request):
    return openai_error(
        404, f"There is no endpoint {request.method} {request.path}.", code="unknown_url"
    )
