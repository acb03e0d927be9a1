"""How API requests prove who they are: a personal token, as `Authorization: Bearer <key>` or
`Authorization: Token <key>`; the browsable API also accepts a signed-in session."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from videos import selectors, services

SCHEMES = (b"bearer", b"token")


class ApiTokenAuthentication(BaseAuthentication):
    """Personal tokens made at /tokens/ (kept hashed), and the one token /auth/token/ gives."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        words = get_authorization_header(request).split()
        if not words or words[0].lower() not in SCHEMES:
            return None
        if len(words) != 2:
            raise AuthenticationFailed("Send the token as `Authorization: Bearer <token>`.")
        try:
            key = words[1].decode()
        except UnicodeError:
            raise AuthenticationFailed("The token is not valid.") from None
        if key.startswith(services.API_TOKEN_PREFIX):
            token = selectors.api_token_by_key(key)
            if token is None or not token.user.is_active:
                raise AuthenticationFailed("The token is not valid.")
            services.api_token_used(token=token)
            return token.user, token
        legacy = Token.objects.select_related("user").filter(key=key).first()
        if legacy is None or not legacy.user.is_active:
            raise AuthenticationFailed("The token is not valid.")
        return legacy.user, legacy

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
