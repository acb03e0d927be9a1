"""What the OpenAPI schema shows: one spelling of each route, operations grouped by tag with a
short summary each, and the token scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


def documented_endpoints(
    endpoints: list[tuple[str, Any, str, Any]],
) -> list[tuple[str, Any, str, Any]]:
    """One spelling of each route (the one with a trailing slash), and no catch-all."""
    return [endpoint for endpoint in endpoints if endpoint[0].endswith("/")]


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "videos.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal token from POST /api/v1/tokens/ (or /auth/token/), as "
            "`Authorization: Bearer <token>`; `Token <token>` works too.",
        }


# The first segment after /api/v1/ decides an operation's group in the Swagger UI.
TAGS = {
    "auth": "auth",
    "tokens": "auth",
    "teams": "teams",
    "invitations": "teams",
    "projects": "projects",
    "prompts": "prompts",
    "jobs": "jobs",
    "estimate": "money",
    "spend": "money",
}


class ReelforgeAutoSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        segment = self.path.removeprefix("/api/v1/").split("/", 1)[0]
        return [TAGS.get(segment, segment)]

    def get_summary(self) -> str | None:
        """The description's first sentence, when no summary was given."""
        summary = super().get_summary()
        if summary:
            return summary
        description = (self.get_description() or "").strip()
        return description.split(". ", 1)[0].split("\n", 1)[0].rstrip(".") or None
