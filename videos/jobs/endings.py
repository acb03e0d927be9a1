"""How a job ends and its money settles: failed and released, canceled, charged."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from billing import services as billing
from videos.jobs.states import Party, S, transition
from videos.models import (
    GenerationJob,
    JobEvent,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def job_fail(
    job: GenerationJob,
    *,
    reason: str,
    code: str = "",
    message: str = "",
    party: Party,
    allowed_from: Iterable[str] = (S.SUBMITTING,),
    next_poll_at: datetime.datetime | None = None,
) -> bool:
    """Fail the job and release its reservation; False if it was in none of `allowed_from`.

    `next_poll_at` keeps a job given up on polled, for a clip that may still come.
    """
    with transaction.atomic():
        moved = transition(
            job,
            to=S.FAILED,
            party=party,
            allowed_from=allowed_from,
            reason=reason,
            provider_error_code=code,
            provider_error_message=message or reason,
            finished_at=timezone.now(),
            next_poll_at=next_poll_at,
        )
        if moved:
            billing.job_release(job=job, note="Released: the job failed")
    return moved


def close_canceled(job: GenerationJob, *, note: str) -> None:
    """Stop waiting for a canceled job's clip; a clip that still comes is stored and charged."""
    with transaction.atomic():
        closed = GenerationJob.objects.filter(
            pk=job.pk, state=S.CANCELED, next_poll_at__isnull=False
        ).update(next_poll_at=None)
        if closed:
            billing.job_release(job=job, note="Released: canceled and no clip arrived")
            JobEvent.objects.create(
                job=job, from_state=S.CANCELED, to_state=S.CANCELED, reason=note
            )


def charge(job: GenerationJob) -> billing.Settlement:
    """Charge the job's clip (at most once) and release its reservation; what did not add up is
    flagged on the job. Every way a clip is paid for goes through here."""
    settlement = billing.job_settle(job=job, credits=job.provider_credits)
    if settlement.discrepancy:
        flag_discrepancy(job, settlement.discrepancy)
    return settlement


def settle(job: GenerationJob, *, canceled: bool, note: str = "") -> None:
    with transaction.atomic():
        settlement = charge(job)
        charged = settlement.charged_usd
        if canceled:
            GenerationJob.objects.filter(pk=job.pk).update(next_poll_at=None)
            if settlement.created:
                JobEvent.objects.create(
                    job=job,
                    from_state=S.CANCELED,
                    to_state=S.CANCELED,
                    reason=note or f"The clip arrived after cancel; stored and charged ${charged}.",
                )
        else:
            transition(
                job,
                to=S.SUCCEEDED,
                party=Party.WORKER,
                reason=f"Stored and probed; charged ${charged}.",
                finished_at=timezone.now(),
            )


def flag_discrepancy(job: GenerationJob, discrepancy: str) -> None:
    """Keep what did not add up where operators see it: on the job, and in its history."""
    GenerationJob.objects.filter(pk=job.pk).update(charge_discrepancy=discrepancy)
    job.charge_discrepancy = discrepancy
    JobEvent.objects.create(job=job, from_state=job.state, to_state=job.state, reason=discrepancy)
    logger.warning("Charge discrepancy on job %s: %s", job.pk, discrepancy)
