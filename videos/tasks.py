"""django-q2 entry points: each one a thin call into the pipeline."""

from __future__ import annotations

from typing import Any

from videos import pipeline


def submit_job(job_id: str) -> None:
    pipeline.job_submit(job_id)


def handle_callback(job_id: str, payload: dict[str, Any], verified: bool) -> None:
    pipeline.job_handle_callback(job_id, payload, verified=verified)


def retrieve_job(job_id: str) -> None:
    pipeline.job_retrieve(job_id)


def sweep() -> dict[str, int]:
    return pipeline.sweep()
