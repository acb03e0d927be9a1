"""The fuzz pass over the API: schemathesis sends every operation of /api/schema/ at least 50
generated requests, then chains operations through the links (a created project, prompt, job,
webhook or batch is read, changed, cancelled or deleted by its id). No answer may be a server
error or differ from what the schema documents.

Requests go through the WSGI app inside the test's transaction, so nothing reaches a worker:
`transaction.on_commit` never fires, and submissions are paused besides, so a created job stays
queued and no provider is called.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi import checks

from tests.fixtures.api import NOT_CHECKED, load_api_schema
from videos.jobs import submissions_pause
from videos.providers import PROVIDERS

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

EXAMPLES_PER_OPERATION = 50
SCENARIOS, STEPS_PER_SCENARIO = 100, 6

schema = load_api_schema(links=True)
# The deterministic coverage phase is the conformance test's (tests/api, every run); here the
# schema's examples and the random phase run, 50 examples an operation.
schema.config.phases.coverage.enabled = False
# Probing every successful answer again without the token (and with a wrong one) is the
# conformance test's too; here it would send most requests three times.
NOT_FUZZED = [*NOT_CHECKED, checks.ignored_auth]


@pytest.fixture
def paused_submissions(db: None) -> None:
    # Undone with the test's transaction: resuming would dispatch the jobs the fuzzing queued.
    for provider in PROVIDERS:
        submissions_pause(provider, code="fuzz", reason="The API fuzz pass submits nothing.")


@pytest.fixture
def auth(api_token: Token, paused_submissions: None) -> dict[str, str]:
    return {"Authorization": f"Token {api_token.key}"}


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_survives_fuzzing(case: Any, auth: dict[str, str]) -> None:
    case.call_and_validate(headers=auth, excluded_checks=NOT_FUZZED)


def test_linked_operations_survive_stateful_fuzzing(auth: dict[str, str]) -> None:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        # Each scenario starts from the same rows: Hypothesis replays a scenario's choices and
        # needs the same answers (a project name taken by an earlier scenario would not be).
        def setup(self) -> None:
            self.savepoint = transaction.savepoint()

        def teardown(self) -> None:
            transaction.savepoint_rollback(self.savepoint)
            super().teardown()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": auth}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(
                response, headers=auth, excluded_checks=NOT_FUZZED, recorder=self.recorder
            )

    Workflow.run(
        settings=hypothesis_settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS_PER_SCENARIO,
            phases=[Phase.generate],
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
