"""The headers every response carries: the Content-Security-Policy, whatever answers (a page,
the API, an error); and Swagger UI still works under it, in a real browser."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values.split() for name, values in (p.split(" ", 1) for p in policy.split("; "))}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/admin/login/", "/api/v1/jobs/", "/api/docs/", "/no/such/page/"]
)
def test_every_response_carries_the_content_security_policy(path):
    response = Client().get(path)
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


@pytest.mark.browser
@pytest.mark.e2e
def test_swagger_ui_runs_under_the_policy(platform, browser_page):
    assert "script-src 'self'" in settings.CONTENT_SECURITY_POLICY
    browser_page.goto(f"{platform.url}/api/docs/")
    browser_page.wait_for_selector(".swagger-ui .info .title")
    assert "Reelforge API" in browser_page.inner_text(".swagger-ui .info .title")
    browser_page.wait_for_selector(".opblock-tag-section")  # the operations, from the schema
