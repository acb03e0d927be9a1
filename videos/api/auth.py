"""Tokens: `POST /auth/token/` (a username and password for the user's one login token), and
personal named tokens, several per user: `GET, POST /tokens/`, `DELETE /tokens/{id}/`. Either
is sent as `Authorization: Bearer <key>` (or `Token <key>`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from videos import selectors, services
from videos.api.base import (
    PAGE_PARAMETERS,
    ApiView,
    AuthenticatedRequest,
    id_parameter,
    page_of,
    paginated_response,
)
from videos.api.errors import error_responses
from videos.api.permissions import found
from videos.api.throttling import TokenRateThrottle


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Bearer <token>`.")


class TokenApi(ApiView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenRateThrottle]

    @extend_schema(
        operation_id="auth_token_create",
        auth=[],
        request=TokenInput,
        responses={200: TokenOutput, **error_responses(400, 413, 415)},
    )
    def post(self, request: Request) -> Response:
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request._request, **data.validated_data)
        if user is None or not user.is_active:
            raise ValidationError(
                {"non_field_errors": ["Unable to log in with these credentials."]}
            )
        services.personal_team_ensure(user=user)
        return Response({"token": services.api_token_get_or_create(user=user)})


class ApiTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The key's first characters, to tell tokens apart.")
    created = serializers.DateTimeField()
    last_used = serializers.DateTimeField(allow_null=True, help_text="To the minute.")


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(help_text="Shown this once: keep it; it cannot be read again.")


class ApiTokenInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What uses it, e.g. `nightly-render`.")


class ApiTokenListApi(ApiView):
    @extend_schema(
        operation_id="tokens_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(ApiTokenSerializer, "ApiTokenPage"), **error_responses(400, 404)},
        description="Your personal API tokens (never their keys).",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return paginated_response(
            request,
            self,
            selectors.api_tokens_of(user=request.user),
            ordering="created",
            to_data=lambda rows: ApiTokenSerializer(rows, many=True).data,
        )

    @extend_schema(
        operation_id="tokens_create",
        request=ApiTokenInput,
        responses={201: ApiTokenCreatedSerializer, **error_responses(400, 413)},
        description="A new personal token; its key is in this answer and nowhere else, ever.",
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = ApiTokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=request.user, name=data.validated_data["name"])
        body = ApiTokenSerializer(token).data | {"key": key}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiTokenDetailApi(ApiView):
    @extend_schema(
        operation_id="tokens_destroy",
        parameters=[id_parameter("token_id")],
        responses={204: None, **error_responses(400, 404)},
        description="Revoke a personal token: requests that send it are refused from now on.",
    )
    def delete(self, request: AuthenticatedRequest, token_id: str) -> Response:
        token: Any = found(selectors.api_token_get(user=request.user, token_id=token_id))
        services.api_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
