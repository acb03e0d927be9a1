"""What people do to jobs: cancel, give up on one that needs attention, retry."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from billing import services as billing
from videos.jobs.create import job_prepare, jobs_queue
from videos.jobs.endings import flag_discrepancy
from videos.jobs.states import AWAITING_RESULT_STATES, Party, S, transition
from videos.models import (
    GenerationJob,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


logger = logging.getLogger(__name__)


def job_cancel(job: GenerationJob, *, by: User | None = None) -> bool:
    """Cancel a job. One not yet sent is simply canceled and released; one the provider has is
    canceled here only: if its clip still arrives it is stored and charged, as it was paid for.
    Returns False if the job had already ended.
    """
    who = f" by {by}" if by else ""
    with transaction.atomic():
        if transition(
            job, to=S.CANCELED, party=Party.PERSON, allowed_from=[S.QUEUED],
            reason=f"Canceled{who}.",
            finished_at=timezone.now(),
        ):
            billing.job_release(job=job, note="Released: canceled before submission")
            return True
    return transition(
        job,
        to=S.CANCELED,
        party=Party.PERSON,
        allowed_from=AWAITING_RESULT_STATES,
        reason=f"Canceled{who} after it was sent; a clip that still arrives is kept and charged.",
        canceled_by_user=True,
        finished_at=timezone.now(),
        # Still awaiting the outcome: polling goes on until the clip arrives or the deadline.
        next_poll_at=job.next_poll_at or timezone.now(),
    )


def job_give_up(job: GenerationJob, *, by: User | None = None) -> bool:
    """An operator's decision on a job that needs attention: call it failed. Its reservation is
    released, unless the provider reported a finished clip, which it charged for: that is charged.
    A clip that still arrives later is stored and the job succeeds. False if not applicable."""
    who = f" by {by}" if by else ""
    with transaction.atomic():
        moved = transition(
            job,
            to=S.FAILED,
            party=Party.PERSON,
            allowed_from=[S.NEEDS_ATTENTION],
            reason=f"Marked failed{who} after review.",
            provider_error_code="given_up",
            finished_at=timezone.now(),
            next_poll_at=None,
        )
        if moved and job.result_url:
            settlement = billing.job_settle(job=job, credits=job.provider_credits)
            if settlement.discrepancy:
                flag_discrepancy(job, settlement.discrepancy)
        elif moved:
            billing.job_release(job=job, note="Released: marked failed after review")
    return moved


def job_retry(
    job: GenerationJob, *, by: User | None = None, wait_for_credits: bool = False
) -> GenerationJob:
    """Start a new attempt of a failed or canceled job, with its own events.

    A job that needs attention may already be paid for at the provider: mark it failed first.
    """
    if job.state not in (S.FAILED, S.CANCELED):
        raise ValidationError(
            {"state": f"Only failed or canceled jobs can be retried, not {job.get_state_display().lower()}."}
        )
    upload = None
    if job.source_image:
        with job.source_image.open("rb") as image:
            upload = SimpleUploadedFile((job.source_image.name or "").rsplit("/", 1)[-1], image.read())
    # Prepared before the transaction: an image URL is resolved again, outside any lock.
    spec = job_prepare(
        project=job.project,
        kind=job.kind,
        prompt=None if job.prompt_version else job.prompt_text,
        prompt_version=job.prompt_version,
        duration=job.duration,
        aspect_ratio=job.aspect_ratio,
        sound=job.sound,
        image=upload,
        image_url="" if upload else job.source_image_url,
    )
    with transaction.atomic():
        # Locked: two retries of one job (a client repeating its request) make one new job.
        GenerationJob.objects.select_for_update().filter(pk=job.pk).first()
        earlier = job.retries.order_by("-created").first()
        if earlier is not None:
            raise ValidationError(
                {"state": f"This job was retried already as {earlier.pk}; retry that one instead."}
            )
        [new] = jobs_queue([spec], by=by, wait_for_credits=wait_for_credits)
        GenerationJob.objects.filter(pk=new.pk).update(retry_of=job, attempt=job.attempt + 1)
    new.refresh_from_db()
    return new
