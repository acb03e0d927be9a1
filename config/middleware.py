from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase

from config.logs import request_id, request_id_from

HEADER = "X-Request-ID"


def _forget_request_id(sender: Any, **kwargs: Any) -> None:
    request_id.set(None)


# Cleared when the response is closed, not when the middleware returns: Django logs a 4xx or
# 5xx ("Not Found: ...") after the middleware, and that line belongs to the request too.
request_finished.connect(_forget_request_id, dispatch_uid="config.request_id")


class RequestIdMiddleware:
    """Gives every request an id (its `X-Request-ID` when acceptable) for its log lines and
    the worker tasks it enqueues, and answers with it so a client can quote it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        current = request_id_from(request.headers.get(HEADER))
        request_id.set(current)
        response = self.get_response(request)
        response[HEADER] = current
        return response


class ContentSecurityPolicyMiddleware:
    """Sends `settings.CONTENT_SECURITY_POLICY` with every response that sets none of its own,
    so a page can only run the site's own scripts, whatever text ends up in it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
