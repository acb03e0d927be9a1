"""How the API answers when something is refused, and how those answers appear in the schema.

Every error, whatever its status, is JSON of one shape:
`{"code": "machine_readable", "detail": "for a person", "fields": {...}}`. `fields` (only on
400) maps each invalid field, by its path (`prompt`, `jobs.3.prompt`, `non_field_errors`), to
its errors, each `{"code": ..., "message": ...}`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from videos import services
from videos.jobs import BudgetExceeded, CreditsShort


class PaymentRequired(exceptions.APIException):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    default_detail = "The project's monthly budget cannot cover this."
    default_code = "budget_exceeded"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _translated(exc: Exception) -> Exception:
    """The API exception for an exception raised by the services below the API."""
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(serializers.as_serializer_error(exc))
    if isinstance(exc, services.BatchItemInvalid):
        # Keyed by each job's position; DRF takes int keys, its stubs only str ones.
        return exceptions.ValidationError({"jobs": exc.errors})  # type: ignore[dict-item]
    if isinstance(exc, BudgetExceeded):
        return PaymentRequired(str(exc))
    if isinstance(exc, CreditsShort):
        return PaymentRequired(str(exc), code="insufficient_credits")
    if isinstance(exc, services.Conflict):
        return Conflict(str(exc), code=exc.code)
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, SuspiciousOperation):
        # Malformed multipart bodies and the like: the client's fault, never a server error.
        return exceptions.ParseError(str(exc) or "The request could not be read.")
    if isinstance(exc, RecursionError):
        # JSON nested deeper than Python's parser recurses.
        return exceptions.ParseError("The JSON is nested too deeply.")
    if isinstance(exc, OverflowError):
        # Python's dates and numbers have limits the schema's formats do not state.
        return exceptions.ValidationError({"non_field_errors": ["A value is out of range."]})
    return exc


def unknown_route(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """No API operation at this address (JSON, like every other API error)."""
    return JsonResponse(
        {
            "code": "not_found",
            "detail": f"No API operation at {request.path}; see /api/docs/ for the ones there are.",
        },
        status=404,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 page, but JSON under /api/: scripts parse errors, they do not read HTML."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "server_error", "detail": "The server failed to answer; try again later."},
            status=500,
        )
    return defaults.server_error(request)


def field_errors(details: Any, path: str = "") -> dict[str, list[dict[str, str]]]:
    """DRF's nested error details, flattened to `{"a.0.b": [{"code", "message"}, ...]}`."""
    if isinstance(details, dict):
        flat: dict[str, list[dict[str, str]]] = {}
        for key, value in details.items():
            # An error of a list as a whole (too long, empty) is the list's own.
            inner = (
                path
                if key == "non_field_errors" and path
                else (f"{path}.{key}" if path else str(key))
            )
            flat.update(field_errors(value, inner))
        return flat
    if (
        isinstance(details, list)
        and details
        and all(isinstance(item, dict) and "message" in item for item in details)
    ):
        return {
            path or "non_field_errors": [
                {"code": str(item.get("code") or "invalid"), "message": str(item["message"])}
                for item in details
            ]
        }
    if isinstance(details, list):
        flat = {}
        for index, value in enumerate(details):
            if value:  # a list of items: only the invalid ones have errors
                flat.update(field_errors(value, f"{path}.{index}" if path else str(index)))
        return flat
    return {path or "non_field_errors": [{"code": "invalid", "message": str(details)}]}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _translated(exc)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = field_errors(exc.get_full_details())
        first = next(iter(fields.items()))
        where = "" if first[0] == "non_field_errors" else f"{first[0]}: "
        response.data = {
            "code": "invalid",
            "detail": f"{where}{first[1][0]['message']}"
            + (f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""),
            "fields": fields,
        }
    elif isinstance(exc, exceptions.APIException) and isinstance(response.data, dict):
        codes = exc.get_codes()
        response.data["code"] = codes if isinstance(codes, str) else exc.default_code
        if response.status_code == 400:  # unreadable bodies: no field to blame
            response.data["fields"] = {}
    return response


# --- Schema ----------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="What went wrong, for a program.")


class FieldErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="E.g. `required`, `max_length`, `invalid`.")
    message = serializers.CharField()


# Built from a dict: a serializer class cannot declare a field named `fields` for itself.
ValidationErrorSerializer = inline_serializer(
    name="ValidationError",
    fields={
        "detail": serializers.CharField(help_text="What went wrong, for a person."),
        "code": serializers.CharField(help_text="`invalid`; `parse_error` for an unreadable body."),
        "fields": serializers.DictField(
            child=FieldErrorSerializer(many=True),
            help_text="Each invalid field by its path (`prompt`, `jobs.3.prompt`, "
            "`non_field_errors`), with its errors.",
        ),
    },
)


ERROR_DESCRIPTIONS = {
    400: "Invalid input (`invalid`): `fields` has each invalid field's errors.",
    401: "No or invalid credentials.",
    402: "The project's monthly budget (`budget_exceeded`) or the provider balance "
    "(`insufficient_credits`) cannot cover the job(s).",
    403: "Your role in the team does not allow this.",
    404: "Not found among your teams' objects.",
    409: "Conflicts with the current state.",
    413: "The request body is too large.",
    415: "Unsupported content type.",
    416: "The requested byte range is outside the file.",
    429: "Too many requests: retry after the `Retry-After` header's seconds.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the errors an operation can answer with (401 and 429 always)."""
    wanted = sorted({401, 429, *statuses})
    return {
        code: OpenApiResponse(
            response=ValidationErrorSerializer if code == 400 else ErrorSerializer,
            description=ERROR_DESCRIPTIONS[code],
        )
        for code in wanted
    }
