"""What keeps jobs moving when a message or a worker was lost: the periodic sweep."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db.models import F, Q
from django.utils import timezone

from videos.jobs import gate
from videos.jobs.endings import close_canceled
from videos.jobs.enqueue import enqueue_retrieve, enqueue_submit
from videos.jobs.outcome import job_poll
from videos.jobs.retrieve import retrieval_deadline, retrieval_give_up
from videos.jobs.states import HELD_FOR_BUDGET, Party, S, transition
from videos.jobs.submit import fail_if_its_month_ended, submissions_resume
from videos.jobs.timing import backoff, conf
from videos.models import (
    GenerationJob,
    ProviderAccount,
)

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


def jobs_poll_due(*, now: datetime.datetime | None = None) -> int:
    """Poll every job whose callback is overdue (and every timed-out job due for its slow look
    for a late clip). Returns how many were polled."""
    now = now or timezone.now()
    due = GenerationJob.objects.filter(
        Q(state__in=[S.SUBMITTED, S.GENERATING, S.CANCELED])
        | Q(state=S.FAILED, provider_error_code="timeout"),
        next_poll_at__lte=now,
        provider_task_id__isnull=False,
    ).values_list("pk", "state", "next_poll_at", "poll_attempts")
    polled = 0
    for job_id, state, next_poll_at, attempts in due[:500]:
        if state == S.FAILED:
            delay = float(conf("LATE_POLL_SECONDS"))
        else:
            delay = backoff(
                attempts + 1, initial=conf("POLL_INITIAL_SECONDS"), cap=conf("POLL_MAX_SECONDS")
            )
        # Claim this poll: of two sweepers, only the one whose UPDATE matches goes on.
        claimed = GenerationJob.objects.filter(pk=job_id, next_poll_at=next_poll_at).update(
            next_poll_at=now + datetime.timedelta(seconds=delay),
            poll_attempts=F("poll_attempts") + 1,
        )
        if claimed:
            with logged_failure("poll", job_id):
                job_poll(GenerationJob.objects.get(pk=job_id), now=now)
            polled += 1
    return polled


def sweep(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Recover stuck jobs, resend held submissions, poll overdue jobs. Safe to run anywhere,
    any number of times at once; slow work (submitting, downloading) goes to other tasks.
    Returns counts, for logs and tests."""
    now = now or timezone.now()
    stale = now - datetime.timedelta(seconds=conf("STALE_STEP_SECONDS"))
    counts = {
        "needs_attention": 0,
        "retrieving": 0,
        "retrieval_gave_up": 0,
        "submitted": 0,
        "polled": 0,
        "budget_month_ended": 0,
    }

    for job in GenerationJob.objects.filter(state=S.SUBMITTING, updated__lt=stale):
        if transition(
            job,
            to=S.NEEDS_ATTENTION,
            party=Party.SWEEP,
            allowed_from=[S.SUBMITTING],
            reason="A worker stopped after sending createTask and before saving the answer; "
            "the provider may have accepted it, so it is not sent again automatically.",
        ):
            counts["needs_attention"] += 1

    for job_id in GenerationJob.objects.filter(state=S.RETRIEVING, updated__lt=stale).values_list(
        "pk", flat=True
    ):
        job = GenerationJob.objects.get(pk=job_id)
        if now >= retrieval_deadline(job):
            if retrieval_give_up(
                job,
                party=Party.SWEEP,
                reason=f"The result was not stored within "
                f"{conf('RETRIEVAL_DEADLINE_MINUTES')} minutes ({job.state_reason})",
            ):
                counts["retrieval_gave_up"] += 1
            continue
        # Claim it, so overlapping sweeps download it once.
        if GenerationJob.objects.filter(pk=job_id, state=S.RETRIEVING, updated__lt=stale).update(
            updated=now
        ):
            enqueue_retrieve(job_id)
            counts["retrieving"] += 1

    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for job in GenerationJob.objects.filter(
        state=S.QUEUED, held_for=HELD_FOR_BUDGET, created__lt=month_start
    ):
        if fail_if_its_month_ended(job, now=now, party=Party.SWEEP):
            counts["budget_month_ended"] += 1

    for provider in ProviderAccount.objects.filter(paused_at__isnull=False).values_list(
        "provider", flat=True
    ):
        with logged_failure("resume check", provider):
            if gate.credits_returned(provider):
                submissions_resume(provider)

    due = GenerationJob.objects.filter(
        Q(submit_after__isnull=True) | Q(submit_after__lte=now), state=S.QUEUED
    ).order_by("created")
    for job_id in due.values_list("pk", flat=True)[: conf("SWEEP_SUBMIT_BATCH")]:
        enqueue_submit(job_id)
        counts["submitted"] += 1

    counts["polled"] = jobs_poll_due(now=now)

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
