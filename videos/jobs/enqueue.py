"""Handing a job to a worker: every django-q2 task the pipeline enqueues."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def enqueue_submit(job_id: Any) -> None:
    async_task("videos.tasks.submit_job", str(job_id), task_name=f"submit-{job_id}")


def enqueue_retrieve(job_id: Any) -> None:
    async_task("videos.tasks.retrieve_job", str(job_id), task_name=f"retrieve-{job_id}")


def enqueue_poll(job_id: Any, *, as_of: datetime.datetime) -> None:
    """Poll the job, judging its deadline as of `as_of` (when the poll came due)."""
    async_task("videos.tasks.poll_job", str(job_id), as_of.isoformat(), task_name=f"poll-{job_id}")


def enqueue_credits_recheck(provider: str) -> None:
    async_task("videos.tasks.recheck_credits", provider, task_name=f"recheck-credits-{provider}")


def enqueue_recover_submission(job_id: Any) -> None:
    async_task(
        "videos.tasks.recover_submission", str(job_id), task_name=f"recover-submission-{job_id}"
    )
