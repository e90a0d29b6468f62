"""One error format for the native REST API (/api/v1/).

Every error answer is `{"error": {"code", "message", "field"?, "details"?}}`:

- `code`: a stable, machine-readable word (`invalid`, `required`,
  `not_found`, `conflict`, `throttled`, `too_large`, `disk_full`, …);
- `message`: one sentence a person can act on; for a bad field it names it;
- `field`: the (dotted) field at fault, when there is one;
- `details`: every field problem, `[{"field", "code", "message"}]`, when a
  request had more than one (a configuration can have several).

DRF's own handler runs first, so its status codes and headers (Retry-After,
WWW-Authenticate, Allow) stay; only the body is rewritten. The /v1/ API keeps
OpenAI's error shape: it is not DRF.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from quotas.services.limits import QuotaExceeded
from studio.services import disk
from studio.services.object_store import StorageError

# Codes for DRF's exceptions whose default code is vaguer than it could be.
CODES = {
    exceptions.ParseError: "malformed_body",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"

    def __init__(self, detail=None, *, field: str | None = None, code: str | None = None):
        super().__init__(detail, code)
        self.field = field


class InsufficientStorage(exceptions.APIException):
    """The server's disk is full: nothing of the request was kept."""

    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_detail = disk.UPLOAD_DISK_FULL
    default_code = "disk_full"

    def __init__(self, detail=None, *, field: str | None = None):
        super().__init__(detail)
        self.field = field


class Conflict(exceptions.APIException):
    """The object's state does not allow this (yet)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's state does not allow this."
    default_code = "conflict"


class StorageUnavailable(exceptions.APIException):
    """The object store failed (studio/services/object_store.py): nothing of
    the request was kept; asking again once it answers may succeed."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "storage_unavailable"


class QuotaRefused(exceptions.APIException):
    """A per-user limit refuses this (quotas.services.QuotaExceeded, answered
    403: asking again does not help until the use goes down)."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "quota_exceeded"

    def __init__(self, detail=None, *, field: str | None = None):
        super().__init__(detail)
        self.field = field or None


def error_body(code: str, message: str, field: str | None = None, details=None) -> dict:
    error = {"code": code, "message": message}
    if field:
        error["field"] = field
    if details:
        error["details"] = details
    return {"error": error}


def _flatten(detail, prefix: str = "") -> list[dict]:
    """[{"field", "code", "message"}] of a ValidationError's nested detail."""
    problems: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = str(key)
            if name == "non_field_errors":
                name = ""
            problems += _flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list) and not isinstance(value, exceptions.ErrorDetail):
                nested = f"{prefix}.{index}" if isinstance(value, dict) else prefix
                problems += _flatten(value, nested)
            else:
                problems += _flatten(value, prefix)
    else:
        code = getattr(detail, "code", None) or "invalid"
        problems.append({"field": prefix, "code": code, "message": str(detail)})
    return problems


def _sentence(field: str, message: str) -> str:
    return f"{field}: {message}" if field else message


def validation_body(detail) -> dict:
    problems = _flatten(detail) or [{"field": "", "code": "invalid", "message": "Invalid input."}]
    first = problems[0]
    details = (
        [{k: v for k, v in p.items() if v or k != "field"} for p in problems]
        if len(problems) > 1
        else None
    )
    return error_body(
        first["code"], _sentence(first["field"], first["message"]), first["field"] or None, details
    )


def exception_handler(exc, context):
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: DRF's answer, in Tailor's shape."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("The request body is larger than the server accepts.")
    if isinstance(exc, QuotaExceeded):
        exc = QuotaRefused(exc.message, field=exc.field)
    if isinstance(exc, StorageError):
        exc = StorageUnavailable(str(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django answers 500 (and logs it)
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_body(exc.detail)
        return response
    if isinstance(exc, Http404):
        code = "not_found"
    elif isinstance(exc, DjangoPermissionDenied):
        code = "permission_denied"
    else:
        code = next((c for kind, c in CODES.items() if isinstance(exc, kind)), None)
    detail = getattr(exc, "detail", None)
    if code is None:
        code = getattr(detail, "code", None) or getattr(exc, "default_code", None) or "error"
    data = response.data
    message = str(data["detail"]) if isinstance(data, dict) and "detail" in data else str(exc)
    response.data = error_body(code, message, getattr(exc, "field", None))
    return response


# --- answers outside DRF views: unknown /api/ paths and crashes ----------------------------


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    """handler400 (a SuspiciousOperation, e.g. a NUL in the address): JSON
    under /api/ and /v1/ (whose clients read `error.message`), the usual page
    elsewhere. The message says what was wrong, never more."""
    message = str(exception) if exception is not None else "The request was malformed."
    if _is_api(request) or request.path.startswith("/v1/"):
        body = error_body("bad_request", message)
        if request.path.startswith("/v1/"):  # OpenAI's shape
            body["error"].update(type="invalid_request_error", param=None)
        return JsonResponse(body, status=400)
    return defaults.bad_request(request, exception)


def page_not_found(request, exception=None):
    """handler404: JSON under /api/, the usual page elsewhere."""
    if _is_api(request):
        return JsonResponse(
            error_body("not_found", f"There is no API endpoint at {request.path}."), status=404
        )
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: JSON under /api/, the usual page elsewhere (the error is logged either way)."""
    if _is_api(request):
        return JsonResponse(
            error_body("server_error", "The server failed to answer; the error was logged."),
            status=500,
        )
    return defaults.server_error(request)
