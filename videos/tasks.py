"""django-q2 entry points: each one a thin call into the jobs."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from videos import jobs
from videos.webhooks import alerts, delivery, events


def submit_job(job_id: str) -> None:
    jobs.job_submit(job_id)


def handle_callback(job_id: str, payload: dict[str, Any], verified: bool) -> None:
    jobs.job_handle_callback(job_id, payload, verified=verified)


def poll_job(job_id: str, as_of: str) -> None:
    jobs.job_poll_by_id(job_id, now=datetime.datetime.fromisoformat(as_of))


def retrieve_job(job_id: str) -> None:
    jobs.job_retrieve(job_id)


def recheck_credits(provider: str) -> bool:
    return jobs.submissions_resume_if_credits_returned(provider)


def recover_submission(job_id: str) -> str:
    return jobs.submission_recover(job_id)


def announce_budget_alerts() -> int:
    return alerts.alerts_announce()


def deliver_webhook(delivery_id: int, held_until: str | None = None) -> str:
    claim = datetime.datetime.fromisoformat(held_until) if held_until else None
    return delivery.delivery_send(delivery_id, held_until=claim)


def sweep() -> dict[str, int]:
    counts = jobs.sweep()
    counts["budget_alerts"] = alerts.alerts_announce()
    counts["webhooks_pruned"] = events.deliveries_prune(now=timezone.now())
    return counts
