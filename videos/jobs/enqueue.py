"""Handing a job to a worker: every django-q2 task the pipeline enqueues."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django_q.tasks import async_task

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def enqueue_submit(job_id: Any) -> None:
    async_task("videos.tasks.submit_job", str(job_id), task_name=f"submit-{job_id}")


def enqueue_retrieve(job_id: Any) -> None:
    async_task("videos.tasks.retrieve_job", str(job_id), task_name=f"retrieve-{job_id}")
