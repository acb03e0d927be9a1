"""API tokens: listed and revoked by owner, never shown."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from videos.admin_scope import (
    SuperusersOnly,
)

# API tokens are secrets: the admin lists and revokes them by owner and never shows a key.
# DRF's proxy model names a token by its key, which every admin message would print.
TokenProxy.__str__ = lambda token: f"API token of {token.user}"  # type: ignore[method-assign, attr-defined]
admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(SuperusersOnly, TokenAdmin):
    list_display = ["user", "created"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are made by POST /api/v1/auth/token/, where their owner sees them
