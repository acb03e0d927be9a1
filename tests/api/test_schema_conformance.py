"""Schemathesis drives every operation of /api/schema/ with generated input: no answer may be a
server error or differ from what the schema documents. The fault suite's fuzz pass
(tests/faults/test_fuzz_api.py) does the same with many more examples and follows links."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token

from tests.fixtures.api import NOT_CHECKED, load_api_schema

pytestmark = pytest.mark.django_db

schema = load_api_schema()


@schema.parametrize()
@hypothesis_settings(
    max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_every_operation_answers_as_documented(case: Any, api_token: Token) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Token {api_token.key}"}, excluded_checks=NOT_CHECKED
    )
