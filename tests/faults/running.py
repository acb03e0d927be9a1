"""Running a fault scenario: the workers' shortened timings, a batch of jobs queued at once, and
a wait until all of them have settled."""

from __future__ import annotations

import uuid
from typing import Any

from tests.fixtures.waiting import eventually
from videos import jobs
from videos.models import GenerationJob, JobState, Kind, Project

S = JobState
UNSETTLED = [S.QUEUED, S.SUBMITTING, S.SUBMITTED, S.GENERATING, S.RETRIEVING]

# The production back-offs are seconds to minutes; here every wait is a second or two so that a
# scenario's minute of trouble can be a few seconds. The clock ticks every 0.2 s, and a step
# whose worker died is taken over after a 5 s lease (30 s in production).
FAST_WORKER = {
    "Q_WORKERS": "2",
    "JOB_CLOCK_SECONDS": "0.2",
    "JOB_POLL_MAX_SECONDS": "2",
    "JOB_SUBMIT_RETRY_INITIAL_SECONDS": "1",
    "JOB_SUBMIT_RETRY_MAX_SECONDS": "2",
    "JOB_RETRIEVAL_RETRY_INITIAL_SECONDS": "1",
    "JOB_RETRIEVAL_RETRY_MAX_SECONDS": "2",
    "JOB_STEP_LEASE_SECONDS": "5",
}


def queue(project: Project, count: int, **fields: Any) -> list[GenerationJob]:
    """Queue `count` 5 s silent clips at once, as a batch does."""
    specs = [
        jobs.job_prepare(
            project=project,
            kind=Kind.TEXT_TO_VIDEO,
            prompt=f"Fault scenario clip {n}: lanterns over a lake",
            duration=5,
            sound=False,
            **fields,
        )
        for n in range(count)
    ]
    return jobs.jobs_queue(specs, by=None)


def unsettled() -> list[tuple[uuid.UUID, str, str]]:
    return list(
        GenerationJob.objects.filter(state__in=UNSETTLED).values_list("pk", "state", "state_reason")
    )


def wait_settled(timeout: float, *, worker: Any = None) -> None:
    """Wait until no job is on its way any more; fail with the stragglers (and the worker's log)."""

    def failure() -> str:
        log = worker.log.read_text(errors="replace")[-4000:] if worker is not None else ""
        return f"jobs still on their way after {timeout} s: {unsettled()}\n{log}"

    eventually(lambda: not unsettled(), timeout=timeout, interval=0.2, failure=failure)


def states() -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in GenerationJob.objects.values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts
