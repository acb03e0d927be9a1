"""What operators watch: whether submissions are paused and why, the task queue, and jobs by
state. Every figure is read from the database or the broker at the moment it is asked for, so
any web process on any host answers the same (no counters kept in a process's memory)."""

from __future__ import annotations

import datetime
import hmac
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from django_q.brokers import get_broker
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from videos.models import GenerationJob, JobState, ProviderAccount


@dataclass
class OperationsStatus:
    submissions_paused: dict[str, dict[str, str]]
    # Tasks waiting in django-q2's broker for a worker.
    task_queue_depth: int
    # Jobs saved and waiting to be submitted (for budget, a rate-limit slot, a worker).
    jobs_queued: int
    oldest_queued_job_age_seconds: float | None
    jobs_by_state: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.submissions_paused

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "degraded",
            "submissions_paused": self.submissions_paused,
            "task_queue_depth": self.task_queue_depth,
            "jobs_queued": self.jobs_queued,
            "oldest_queued_job_age_seconds": self.oldest_queued_job_age_seconds,
            "jobs_by_state": self.jobs_by_state,
        }


def submissions_paused() -> dict[str, dict[str, str]]:
    """Paused provider accounts: provider -> its pause code, reason and since when."""
    return {
        account.provider: {
            "code": account.pause_code,
            "reason": account.pause_reason,
            "since": account.paused_at.isoformat(),  # type: ignore[union-attr]  # paused only
        }
        for account in ProviderAccount.objects.filter(paused_at__isnull=False)
    }


def is_healthy() -> bool:
    """Whether the database answers and no submissions are paused (the public health check)."""
    return not ProviderAccount.objects.filter(paused_at__isnull=False).exists()


def operations_status(*, now: datetime.datetime | None = None) -> OperationsStatus:
    by_state = dict(
        GenerationJob.objects.order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    oldest = (
        GenerationJob.objects.filter(state=JobState.QUEUED)
        .order_by()
        .aggregate(oldest=Min("created"))["oldest"]
    )
    age = ((now or timezone.now()) - oldest).total_seconds() if oldest else None
    return OperationsStatus(
        submissions_paused=submissions_paused(),
        task_queue_depth=get_broker().queue_size() or 0,
        jobs_queued=by_state.get(JobState.QUEUED, 0),
        oldest_queued_job_age_seconds=age,
        jobs_by_state={state: by_state.get(state, 0) for state in JobState.values},
    )


def metrics_token_matches(authorization: str | None) -> bool:
    """Whether an `Authorization: Bearer <token>` header carries METRICS_TOKEN."""
    expected = settings.METRICS_TOKEN
    scheme, _, given = (authorization or "").partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    )


class _StatusCollector(Collector):
    def __init__(self, status: OperationsStatus) -> None:
        self.status = status

    def collect(self) -> Any:
        status = self.status
        jobs = GaugeMetricFamily("reelforge_jobs", "Generation jobs by state.", labels=["state"])
        for state, count in status.jobs_by_state.items():
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            "reelforge_task_queue_depth",
            "Tasks waiting in the broker for a worker.",
            value=status.task_queue_depth,
        )
        yield GaugeMetricFamily(
            "reelforge_oldest_queued_job_age_seconds",
            "Age of the oldest job waiting to be submitted (0 when none waits).",
            value=status.oldest_queued_job_age_seconds or 0,
        )
        paused = GaugeMetricFamily(
            "reelforge_submissions_paused",
            "1 while submissions to a provider are paused (bad key, no credits).",
            labels=["provider", "code"],
        )
        for provider, pause in status.submissions_paused.items():
            paused.add_metric([provider, pause["code"]], 1)
        yield paused


def prometheus_text(status: OperationsStatus) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status))
    return generate_latest(registry)
