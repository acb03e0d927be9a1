"""`POST /auth/token/`: a username and password for the API token used as
`Authorization: Token <key>`."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from videos import services
from videos.api.base import ApiView
from videos.api.errors import error_responses
from videos.api.throttling import TokenRateThrottle


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")


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
            raise ValidationError({"non_field_errors": ["Unable to log in with these credentials."]})
        services.personal_team_ensure(user=user)
        return Response({"token": services.api_token_get_or_create(user=user)})
