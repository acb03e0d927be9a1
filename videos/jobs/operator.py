"""What people do to jobs: cancel, give up on one that needs attention, retry; and resolve what
the platform cannot decide alone: retry a download that failed, adopt a task an operator found
at the provider, or confirm that the provider never accepted a job."""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import services as billing
from videos.jobs.clock import retrieval_lease_end
from videos.jobs.create import job_prepare, jobs_queue
from videos.jobs.endings import charge
from videos.jobs.enqueue import enqueue_retrieve
from videos.jobs.outcome import job_apply_status
from videos.jobs.states import Party, S, transition
from videos.jobs.timing import conf
from videos.models import (
    GenerationJob,
    JobEvent,
)
from videos.providers import get_provider
from videos.providers.base import ProviderError

if TYPE_CHECKING:
    from django.contrib.auth.models import User


logger = logging.getLogger(__name__)


def job_cancel(*, job: GenerationJob, by: User | None = None) -> bool:
    """Cancel a job. One not yet sent is simply canceled and released; one the provider has is
    canceled here only: if its clip still arrives it is stored and charged, as it was paid for.
    Returns False if the job had already ended, or needs attention: whether the provider has
    that one is unknown, and canceling (then retrying) it could pay for the clip twice, so an
    operator resolves it instead (give up, adopt its task, or confirm it was never accepted).
    """
    who = _who(by)
    with transaction.atomic():
        if transition(
            job,
            to=S.CANCELED,
            party=Party.PERSON,
            allowed_from=[S.QUEUED],
            reason=f"Canceled{who}.",
            finished_at=timezone.now(),
        ):
            billing.job_release(job=job, note="Released: canceled before submission")
            return True
    return transition(
        job,
        to=S.CANCELED,
        party=Party.PERSON,
        allowed_from=[S.SUBMITTING, S.SUBMITTED, S.GENERATING],
        reason=f"Canceled{who} after it was sent; a clip that still arrives is kept and charged.",
        canceled_by_user=True,
        finished_at=timezone.now(),
        # Still awaiting the outcome: polling goes on until the clip arrives or the deadline.
        next_poll_at=job.next_poll_at or timezone.now(),
    )


def job_give_up(*, job: GenerationJob, by: User | None = None) -> bool:
    """An operator's decision on a job that needs attention: call it failed. Its reservation is
    released, unless the provider reported a finished clip, which it charged for: that is charged.
    A clip that still arrives later is stored and the job succeeds. False if not applicable."""
    who = _who(by)
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
            charge(job)
        elif moved:
            billing.job_release(job=job, note="Released: marked failed after review")
    return moved


def job_retry(
    *, job: GenerationJob, by: User | None = None, wait_for_credits: bool = False
) -> GenerationJob:
    """Start a new attempt of a failed or canceled job, with its own events.

    A job that needs attention may already be paid for at the provider: mark it failed first.
    """
    if job.state not in (S.FAILED, S.CANCELED):
        raise ValidationError(
            {
                "state": f"Only failed or canceled jobs can be retried, not {job.get_state_display().lower()}."
            }
        )
    upload = None
    if job.source_image:
        with job.source_image.open("rb") as image:
            upload = SimpleUploadedFile(
                (job.source_image.name or "").rsplit("/", 1)[-1], image.read()
            )
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
        variables=job.prompt_variables,
        negative_prompt=job.negative_prompt,
        mode=job.mode,
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
        GenerationJob.objects.filter(pk=new.pk).update(
            retry_of=job, attempt=job.attempt + 1, batch_id=job.batch_id, batch_row=job.batch_row
        )
    new.refresh_from_db()
    return new


# --- Resolving what the platform could not decide alone -------------------------------------

TASK_ID_MAX_LENGTH: int = GenerationJob._meta.get_field("provider_task_id").max_length or 200


def _who(by: User | None) -> str:
    return f" by {by}" if by else ""


def job_retrieval_retry(*, job: GenerationJob, by: User | None) -> bool:
    """Try again to copy a finished clip into storage: for a job that needs attention because
    its download failed, or one stuck in `retrieving` (its worker died, and the sweep has not
    taken it back yet). The download runs in a worker; its deadline starts again now.

    Raises ValidationError for a job that has no clip to retrieve; returns False when the job
    changed meanwhile (another person, the sweep or a worker got there first).
    """
    if not job.result_url or job.state not in (S.NEEDS_ATTENTION, S.RETRIEVING):
        raise ValidationError(
            {"state": "Only a job whose finished clip could not be stored can be retrieved again."}
        )
    reason = f"Retrieval retried{_who(by)}."
    if job.state == S.NEEDS_ATTENTION:
        with transaction.atomic():
            moved = transition(
                job,
                to=S.RETRIEVING,
                party=Party.PERSON,
                allowed_from=[S.NEEDS_ATTENTION],
                reason=reason,
                retrieve_after=retrieval_lease_end(timezone.now()),
                retrieve_attempts=0,
            )
            if moved:
                transaction.on_commit(lambda: enqueue_retrieve(job.pk))
        return moved
    # Still `retrieving`: claimed as the sweep claims it, so a download that is only slow (its
    # worker still busy) is not started a second time beside it.
    now = timezone.now()
    stale = now - datetime.timedelta(seconds=conf("STALE_STEP_SECONDS"))
    with transaction.atomic():
        claimed = GenerationJob.objects.filter(
            pk=job.pk, state=S.RETRIEVING, updated__lt=stale
        ).update(updated=now, retrieve_after=retrieval_lease_end(now), retrieve_attempts=0)
        if not claimed:
            raise ValidationError(
                {
                    "state": "Its clip is being copied right now; retry once it has been stuck for "
                    f"{conf('STALE_STEP_SECONDS')} seconds."
                }
            )
        # The retrieval deadline counts from the latest move into `retrieving`.
        JobEvent.objects.create(
            job=job, from_state=S.RETRIEVING, to_state=S.RETRIEVING, reason=reason
        )
        transaction.on_commit(lambda: enqueue_retrieve(job.pk))
    return True


def _unsure_whether_sent(job: GenerationJob) -> None:
    """Raise unless the job needs attention because nobody knows whether the provider has it."""
    if job.state != S.NEEDS_ATTENTION:
        raise ValidationError(
            {
                "state": f"Only jobs that need attention can be resolved, not "
                f"{job.get_state_display().lower()} ones."
            }
        )
    if job.result_url:
        raise ValidationError(
            {
                "state": "The provider finished this job; its clip could not be stored. Retry "
                "the retrieval instead."
            }
        )
    if job.provider_task_id:
        raise ValidationError(
            {"state": f"The provider accepted this job as task {job.provider_task_id}."}
        )


def job_adopt_task(*, job: GenerationJob, task_id: str, by: User | None) -> bool:
    """Give a job that needs attention the provider task an operator found for it, then follow
    that task as if its createTask answer had arrived: it is polled, and an outcome the
    provider already has (a clip, a failure) is applied at once.

    The provider is asked about the task first: one it does not know, or one created for
    another job (another callback URL), is refused with a ValidationError, as is a task id
    another job has. Returns False when the job changed meanwhile.
    """
    _unsure_whether_sent(job)
    task_id = (task_id or "").strip()
    if not task_id or len(task_id) > TASK_ID_MAX_LENGTH:
        raise ValidationError(
            {"task_id": f"Give the provider's task id (1 to {TASK_ID_MAX_LENGTH} characters)."}
        )
    taken = GenerationJob.objects.filter(provider=job.provider, provider_task_id=task_id)
    if taken.exclude(pk=job.pk).exists():
        raise ValidationError({"task_id": f"Task {task_id} belongs to another job."})
    try:
        status = get_provider(job.provider).get_task(task_id, kind=job.kind)
    except ProviderError as exc:
        raise ValidationError(
            {"task_id": f"The provider could not confirm task {task_id}: {exc.message}"}
        ) from None
    if (status.external_task_id is not None and status.external_task_id != str(job.pk)) or (
        status.callback_url and not status.callback_url.endswith(job.callback_path)
    ):
        raise ValidationError(
            {
                "task_id": f"Task {task_id} was created for another job (its callback URL is "
                "not this job's)."
            }
        )
    now = timezone.now()
    try:
        with transaction.atomic():
            moved = transition(
                job,
                to=S.SUBMITTED,
                party=Party.PERSON,
                allowed_from=[S.NEEDS_ATTENTION],
                reason=f"Task {task_id} adopted{_who(by)} after review.",
                provider_task_id=task_id,
                submitted_at=now,
                next_poll_at=now + datetime.timedelta(seconds=conf("POLL_INITIAL_SECONDS")),
                poll_attempts=0,
            )
    except IntegrityError:  # another job took the task id between our check and the update
        raise ValidationError({"task_id": f"Task {task_id} belongs to another job."}) from None
    if moved:
        job_apply_status(job, status)
    return moved


def job_confirm_not_accepted(*, job: GenerationJob, by: User | None) -> bool:
    """An operator found that the provider never accepted a job that needs attention: it fails
    (code `not_accepted`) and its reservation is released, so it can be retried without paying
    twice. Returns False when the job changed meanwhile."""
    _unsure_whether_sent(job)
    reason = f"The provider never accepted it (confirmed{_who(by)})."
    with transaction.atomic():
        moved = transition(
            job,
            to=S.FAILED,
            party=Party.PERSON,
            allowed_from=[S.NEEDS_ATTENTION],
            reason=reason,
            provider_error_code="not_accepted",
            provider_error_message=reason,
            finished_at=timezone.now(),
            next_poll_at=None,
        )
        if moved:
            billing.job_release(job=job, note="Released: the provider never accepted it")
    return moved
