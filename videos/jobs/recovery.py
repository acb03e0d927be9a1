"""What keeps jobs moving when a message or a worker was lost: the periodic sweep."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from videos.jobs.clock import tick
from videos.jobs.endings import close_canceled
from videos.jobs.outcome import job_find_lost_task
from videos.jobs.retrieve import retrieval_deadline, retrieval_give_up
from videos.jobs.states import HELD_FOR_BUDGET, Party, S, transition
from videos.jobs.submit import fail_if_its_month_ended
from videos.jobs.timing import conf
from videos.models import (
    GenerationJob,
)
from videos.providers import get_provider

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


@contextmanager
def logged_failure(step: str, job_id: Any) -> Iterator[None]:
    """One job's trouble must not stop the sweep for every other job."""
    try:
        yield
    except Exception:
        logger.exception("Sweep: %s of job %s failed", step, job_id)


def submission_recover(job_id: Any) -> str:
    """Settle a job whose submitter stopped between claiming a slot and saving createTask's
    answer (the clock hands it over once `SUBMIT_STALE_SECONDS` have passed). A provider that
    keeps our reference is asked what became of it; for kie.ai a person decides, since the task
    may exist and sending it again could pay twice. Returns what was done ("" if nothing)."""
    job = GenerationJob.objects.filter(pk=job_id, state=S.SUBMITTING).first()
    if job is None:
        return ""
    if get_provider(job.provider).finds_tasks_by_reference:
        return job_find_lost_task(job, now=timezone.now())
    moved = transition(
        job,
        to=S.NEEDS_ATTENTION,
        party=Party.SWEEP,
        allowed_from=[S.SUBMITTING],
        reason="A worker stopped after claiming a slot for createTask and before saving the "
        "answer; the provider may have accepted it, so it is not sent again automatically.",
    )
    return "needs_attention" if moved else ""


def sweep(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Recover stuck jobs, then hand over what has come due (`clock.tick`). Safe to run anywhere,
    any number of times at once; slow work (submitting, downloading) goes to other tasks.
    Returns counts, for logs and tests."""
    now = now or timezone.now()
    stale = now - datetime.timedelta(seconds=conf("STALE_STEP_SECONDS"))
    counts = {
        "retrieving": 0,
        "retrieval_gave_up": 0,
        "submitted": 0,
        "polled": 0,
        "budget_month_ended": 0,
        "submissions_recovered": 0,
        "webhooks": 0,
    }

    # A download whose worker died is taken over by the clock once its lease runs out; this
    # gives up on one that has failed for too long.
    for job_id in GenerationJob.objects.filter(state=S.RETRIEVING, updated__lt=stale).values_list(
        "pk", flat=True
    ):
        job = GenerationJob.objects.get(pk=job_id)
        if now >= retrieval_deadline(job) and retrieval_give_up(
            job,
            party=Party.SWEEP,
            reason=f"The result was not stored within "
            f"{conf('RETRIEVAL_DEADLINE_MINUTES')} minutes ({job.state_reason})",
        ):
            counts["retrieval_gave_up"] += 1

    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for job in GenerationJob.objects.filter(
        state=S.QUEUED, held_for=HELD_FOR_BUDGET, created__lt=month_start
    ):
        if fail_if_its_month_ended(job, now=now, party=Party.SWEEP):
            counts["budget_month_ended"] += 1

    # The clock does this every few seconds in each worker (resuming submissions where credits
    # came back, too); here it is the safety net.
    handed = tick(now=now)
    counts["retrieving"] = handed.retrieving
    counts["submitted"] = handed.submitted
    counts["polled"] = handed.polled
    counts["submissions_recovered"] = handed.submissions_recovered
    counts["webhooks"] = handed.webhooks

    # Canceled before the provider's task id was known: no poll can find it; stop waiting.
    deadline = now - datetime.timedelta(minutes=conf("DEADLINE_MINUTES"))
    for job in GenerationJob.objects.filter(
        state=S.CANCELED,
        next_poll_at__isnull=False,
        provider_task_id__isnull=True,
        created__lt=deadline,
    ):
        close_canceled(job, note="No task id and no clip arrived before the deadline.")
    return counts
