"""The fault suite's fixtures: real `qcluster` workers with the pipeline's timings shortened."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from billing.models import Budget
from tests.faults.running import FAST_WORKER
from videos.models import Project


@pytest.fixture
def fault_worker(start_worker: Any) -> Callable[..., Any]:
    """Start a real `qcluster` with FAST_WORKER's timings (and `env` on top)."""

    def start(**env: str) -> Any:
        return start_worker(**{**FAST_WORKER, **env})

    return start


@pytest.fixture
def roomy_project(project: Project) -> Project:
    """The project with a budget no scenario reaches (the budget race has its own)."""
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("500.00"))
    return project
