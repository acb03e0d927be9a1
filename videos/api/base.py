"""What every API view shares: authentication, the personal team on first use, throttles,
the body size limit, the error format, and cursor pagination."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from videos import services
from videos.api.errors import RequestTooLarge, api_exception_handler
from videos.api.throttling import TeamRateThrottle, UserRateThrottle, rate_limit_headers

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class AuthenticatedRequest(Request):
    """For annotations: the request of a view that requires an authenticated user (every view
    but logging in), whose `user` therefore is a real user. DRF passes a plain `Request`."""

    user: User


class ApiView(APIView):
    parser_classes = [JSONParser]
    throttle_classes = [UserRateThrottle, TeamRateThrottle]
    # None: the DATA_UPLOAD_MAX_MEMORY_SIZE setting. Views taking uploads allow more.
    max_body_bytes: int | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Refused before anything reads the body: parsers would take it whole into memory.
        limit = self.max_body_bytes or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        super().initial(request, *args, **kwargs)

    def perform_authentication(self, request: Request) -> None:
        super().perform_authentication(request)
        if request.user and request.user.is_authenticated:
            # Every user belongs to a team; one who has none gets their own on first use.
            services.personal_team_ensure(user=request.user)

    def check_throttles(self, request: Request) -> None:
        # DRF's own, keeping the throttles so the answer can say how much of each rate is left.
        self.counted_throttles = []
        waits = []
        for throttle in self.get_throttles():
            if not throttle.allow_request(request, self):
                waits.append(throttle.wait())
            self.counted_throttles.append(throttle)
        if waits:
            # DRF takes None for "no idea when": the answer then has no Retry-After.
            wait = max((w for w in waits if w is not None), default=None)
            self.throttled(request, wait)  # type: ignore[arg-type]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        for header, value in rate_limit_headers(getattr(self, "counted_throttles", [])).items():
            response[header] = value
        return response

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return api_exception_handler


class Cursor(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request: Request) -> int:
        # Out of range is a mistake to say, not a number to clamp quietly.
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {"page_size": [f"Give a whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)


def paginated_response(
    request: Request,
    view: APIView,
    queryset: QuerySet[Any],
    *,
    ordering: str | tuple[str, ...],
    to_data: Callable[[list[Any]], object],
) -> Response:
    """One page of `queryset` as {"next", "previous", "results"}; `to_data` renders the rows."""
    paginator = Cursor()
    paginator.ordering = ordering
    rows = paginator.paginate_queryset(queryset, request, view=view) or []
    return paginator.get_paginated_response(to_data(list(rows)))


PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor", OpenApiTypes.STR, description="The `next` or `previous` link's cursor."
    ),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": Cursor.max_page_size},
        description=f"Rows a page (default {Cursor.page_size}); outside 1 to "
        f"{Cursor.max_page_size} is a 400.",
    ),
]

_page_serializers: dict[str, type[serializers.Serializer]] = {}


def page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """The schema of a page of `item`s, named `name` in the schema's components."""
    if name not in _page_serializers:
        _page_serializers[name] = type(
            name,
            (serializers.Serializer,),
            {
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": item(many=True),
                "__module__": __name__,
            },
        )
    return _page_serializers[name]


def id_parameter(name: str, kind: str = "integer") -> OpenApiParameter:
    schema = OpenApiTypes.UUID if kind == "uuid" else OpenApiTypes.INT
    return OpenApiParameter(name, schema, OpenApiParameter.PATH)
