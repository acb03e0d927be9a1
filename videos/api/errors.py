"""How the API answers when something is refused, and how those answers appear in the schema.

Field errors are `400 {"field": ["message", ...]}`; every other error is
`{"detail": "message", "code": "machine_readable_code"}` with its own status.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
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


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _translated(exc)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        if not isinstance(response.data, dict):
            response.data = {"non_field_errors": response.data}
    elif isinstance(exc, exceptions.APIException) and isinstance(response.data, dict):
        codes = exc.get_codes()
        response.data["code"] = codes if isinstance(codes, str) else exc.default_code
    return response


# --- Schema ----------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    code = serializers.CharField(help_text="What went wrong, for a program.")


ERROR_DESCRIPTIONS = {
    400: "Invalid input: each field with its messages (`non_field_errors` for the whole body).",
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
            response=OpenApiTypes.OBJECT if code == 400 else ErrorSerializer,
            description=ERROR_DESCRIPTIONS[code],
        )
        for code in wanted
    }
