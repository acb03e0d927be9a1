"""Schemathesis drives every operation of /api/schema/ with generated input: no answer may be a
server error or differ from what the schema documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi import checks

from config.wsgi import application

pytestmark = pytest.mark.django_db

# DRF reads "5" as 5 and "true" as true on purpose, and budgets or "image to video needs an
# image" are rules a schema cannot state: those two checks would report designed behaviour.
NOT_CHECKED = [checks.negative_data_rejection, checks.positive_data_acceptance]


# Loaded through the WSGI app, as a client would fetch it; it needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def alice_token(alice: Any, project: Any, settings: Any, public_resolver: Any) -> Iterator[Token]:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": None, "team": None, "token": None},
    }
    # Called straight through WSGI, each request would close the test's database connection
    # when it ends, as in production; Django's test client holds that back the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield Token.objects.get_or_create(user=alice)[0]
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(
    max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_every_operation_answers_as_documented(case: Any, alice_token: Token) -> None:
    token = alice_token
    case.call_and_validate(
        headers={"Authorization": f"Token {token.key}"}, excluded_checks=NOT_CHECKED
    )
