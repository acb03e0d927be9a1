"""django-q2 entry points: each one a thin call into the jobs."""

from __future__ import annotations

from typing import Any

from videos import jobs


def submit_job(job_id: str) -> None:
    jobs.job_submit(job_id)


def handle_callback(job_id: str, payload: dict[str, Any], verified: bool) -> None:
    jobs.job_handle_callback(job_id, payload, verified=verified)


def retrieve_job(job_id: str) -> None:
    jobs.job_retrieve(job_id)


def sweep() -> dict[str, int]:
    return jobs.sweep()
