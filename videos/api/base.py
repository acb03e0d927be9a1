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
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from videos import services
from videos.api.errors import RequestTooLarge, api_exception_handler
from videos.api.throttling import TeamRateThrottle, UserRateThrottle

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

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return api_exception_handler


class Cursor(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100


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
    OpenApiParameter("cursor", OpenApiTypes.STR, description="The `next` or `previous` link's cursor."),
    OpenApiParameter(
        "page_size", OpenApiTypes.INT, description=f"Rows a page (default {Cursor.page_size}, "
        f"at most {Cursor.max_page_size})."
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
