"""What the OpenAPI schema shows of the URL patterns."""

from __future__ import annotations

from typing import Any


def documented_endpoints(endpoints: list[tuple[str, Any, str, Any]]) -> list[tuple[str, Any, str, Any]]:
    """One spelling of each route (the one with a trailing slash), and no catch-all."""
    return [endpoint for endpoint in endpoints if endpoint[0].endswith("/")]
