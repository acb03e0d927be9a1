"""A job's states and how it changes state: one conditional UPDATE and one JobEvent, or nothing
at all."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from videos.models import GenerationJob, JobEvent, JobState

S = JobState
# A result may still arrive for these: the provider holds (or may hold) a task of ours.
AWAITING_RESULT_STATES = (S.SUBMITTING, S.SUBMITTED, S.GENERATING, S.NEEDS_ATTENTION)
# A job failed with one of these codes was given up on, not refused: a clip may still come.
GIVEN_UP_CODES = {"timeout", "given_up"}
# `held_for` of a queued job whose reservation the budget refused.
HELD_FOR_BUDGET = "budget"


def transition(
    job: GenerationJob,
    *,
    to: str,
    allowed_from: Iterable[str],
    reason: str = "",
    **fields: Any,
) -> bool:
    """Move `job` to `to` if it is in one of `allowed_from`; record the event. True if moved.

    The UPDATE names the exact state it read, so of two racing callers only one wins; the
    loser re-reads and tries again only if the new state is still one it may leave.
    """
    allowed = set(allowed_from)
    for _ in range(3):
        current = GenerationJob.objects.filter(pk=job.pk).values_list("state", flat=True).first()
        if current not in allowed:
            return False
        with transaction.atomic():
            moved = GenerationJob.objects.filter(pk=job.pk, state=current).update(
                state=to, state_reason=reason, updated=timezone.now(), **fields
            )
            if moved:
                JobEvent.objects.create(job_id=job.pk, from_state=current, to_state=to, reason=reason)
        if moved:
            job.refresh_from_db()
            return True
    return False


def note(job: GenerationJob, reason: str) -> None:
    """Say why a job is waiting, without changing its state."""
    GenerationJob.objects.filter(pk=job.pk).update(state_reason=reason, updated=timezone.now())
    job.state_reason = reason
