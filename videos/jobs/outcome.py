"""Step 3, callback and poll: learn how the provider's task ended and move the job on.

Callbacks are the main path; polling, with back-off, is the safety net for lost ones. A task's
outcome is always read back from the provider (recordInfo) before it is believed.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.utils import timezone
from django_q.tasks import async_task

from videos.jobs.endings import close_canceled, job_fail
from videos.jobs.enqueue import enqueue_retrieve
from videos.jobs.states import AWAITING_RESULT_STATES, GIVEN_UP_CODES, Party, S, transition
from videos.jobs.timing import conf, deadline
from videos.models import (
    Asset,
    GenerationJob,
    JobEvent,
)
from videos.providers import get_provider
from videos.providers.base import (
    ProviderError,
    TaskState,
    TaskStatus,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def job_awaits_outcome(job: GenerationJob) -> bool:
    """Whether news of the job's task (a callback) can still change anything.

    A job that is sent and not finished can; so can one given up on (a late clip is still
    stored) and one canceled after it was sent, until its clip is stored. Anything else is final.
    """
    if job.state in AWAITING_RESULT_STATES:
        return True
    if job.state == S.FAILED:
        return job.provider_error_code in GIVEN_UP_CODES
    if job.state == S.CANCELED:
        return job.canceled_by_user and not Asset.objects.filter(job=job).exists()
    return False


def _callback_lock_key(job_id: Any) -> str:
    return f"reelforge:callback:{job_id}"


def callback_accept(job: GenerationJob, status: TaskStatus, *, verified: bool) -> None:
    """Hand an authenticated callback to a worker; the view answers the provider at once.

    A callback for a final job, or one for a job whose earlier callback is still being handled,
    is dropped here: replaying callbacks must never turn into provider calls.
    """
    if not job_awaits_outcome(job):
        return
    # Held (in the shared cache) until the worker is done with it; expires if the worker dies.
    if not cache.add(_callback_lock_key(job.pk), 1, timeout=conf("CALLBACK_DEDUP_SECONDS")):
        logger.info("Callback for job %s dropped: one is being handled", job.pk)
        return
    payload = {
        "task_id": status.task_id,
        "state": status.state.value,
        "credits_consumed": (
            str(status.credits_consumed) if status.credits_consumed is not None else None
        ),
    }
    async_task(
        "videos.tasks.handle_callback",
        str(job.pk),
        payload,
        verified,
        task_name=f"callback-{job.pk}-{status.state.value}",
    )


def job_handle_callback(job_id: Any, payload: dict[str, Any], *, verified: bool) -> None:
    """Apply a callback's outcome, as recordInfo confirms it.

    A signature covers only the task id and a timestamp, so the outcome and the result URL are
    always read back from the provider; only the credits consumed (absent from recordInfo) are
    taken from a signed callback, and never above the list price. A task id is adopted only when
    recordInfo shows the task carries this job's callback URL.
    """
    try:
        job = GenerationJob.objects.filter(pk=job_id).first()
        if job is None or not job_awaits_outcome(job):
            return
        task_id = payload["task_id"]
        if job.provider_task_id and job.provider_task_id != task_id:
            logger.warning(
                "Callback for job %s names task %s, not its own; ignored", job.pk, task_id
            )
            return
        try:
            status = get_provider(job.provider).get_task(task_id)
        except ProviderError as exc:
            logger.warning("Could not confirm callback for job %s: %s", job.pk, exc.message)
            if job.provider_task_id is None:
                JobEvent.objects.create(
                    job=job,
                    from_state=job.state,
                    to_state=job.state,
                    reason=f"A callback named task {task_id}, which the provider could not "
                    f"confirm ({exc.message}); it was not adopted.",
                )
            return
        if not _task_belongs_to(job, status):
            logger.warning("Task %s does not carry job %s's callback URL; ignored", task_id, job.pk)
            return
        if verified and payload.get("credits_consumed") is not None:
            status = replace(status, credits_consumed=Decimal(payload["credits_consumed"]))
        job_apply_status(job, status)
    finally:
        cache.delete(_callback_lock_key(job_id))


def _task_belongs_to(job: GenerationJob, status: TaskStatus) -> bool:
    """A task the provider reports for us must have been created with this job's callback URL."""
    if job.provider_task_id == status.task_id:
        return True
    return bool(status.callback_url and status.callback_url.endswith(job.callback_path))


def _adopt(job: GenerationJob, task_id: str, *, reason: str) -> None:
    """Take the provider's task id for a job whose createTask answer was never saved."""
    now = timezone.now()
    adopted = GenerationJob.objects.filter(pk=job.pk, provider_task_id__isnull=True).update(
        provider_task_id=task_id, submitted_at=now
    )
    if adopted:
        job.provider_task_id = task_id
        transition(
            job,
            to=S.SUBMITTED,
            party=Party.PROVIDER,
            allowed_from=[S.SUBMITTING, S.NEEDS_ATTENTION],
            reason=reason,
            next_poll_at=now + datetime.timedelta(seconds=conf("CALLBACK_GRACE_SECONDS")),
        )


def job_apply_status(job: GenerationJob, status: TaskStatus) -> None:
    """Move the job by what the provider says of its task (from a callback or a poll)."""
    if job.provider_task_id is None:
        _adopt(
            job,
            status.task_id,
            reason=f"Adopted task {status.task_id} from the provider's callback.",
        )
    if status.state is TaskState.SUCCESS:
        _result_ready(job, status)
    elif status.state is TaskState.FAIL:
        message = status.fail_message or "The provider could not generate the clip."
        if job.state == S.CANCELED:
            close_canceled(job, note=f"Generation failed after cancel: {message}")
        else:
            job_fail(
                job,
                reason=f"Generation failed: {message}",
                code=status.fail_code or "501",
                message=message,
                party=Party.PROVIDER,
                allowed_from=AWAITING_RESULT_STATES,
            )
    elif status.state is TaskState.GENERATING:
        transition(
            job, to=S.GENERATING, party=Party.PROVIDER, reason="The provider is generating it."
        )


def _result_ready(job: GenerationJob, status: TaskStatus) -> None:
    """A clip exists at the provider, and was paid for: it is stored and charged, whatever the
    job's state. A job we had given up on (deadline, an operator's decision) still succeeds."""
    if not status.result_urls:
        job_fail(
            job,
            reason="The provider reported success without a result URL.",
            code="no_result",
            party=Party.PROVIDER,
            allowed_from=AWAITING_RESULT_STATES,
        )
        return
    fields = {"result_url": status.result_urls[0], "provider_credits": status.credits_consumed}
    if job.state == S.CANCELED:
        if not Asset.objects.filter(job=job).exists():
            GenerationJob.objects.filter(pk=job.pk).update(**fields)
            enqueue_retrieve(job.pk)
        return
    late = job.state == S.FAILED and job.provider_error_code in GIVEN_UP_CODES
    if transition(
        job,
        to=S.RETRIEVING,
        party=Party.PROVIDER,
        allowed_from=[*AWAITING_RESULT_STATES, *([S.FAILED] if late else [])],
        reason="The clip is ready; copying it into storage."
        + (" It arrived after the job was given up." if late else ""),
        next_poll_at=None,
        **fields,
    ):
        enqueue_retrieve(job.pk)


def job_poll(job: GenerationJob, *, now: datetime.datetime | None = None) -> None:
    now = now or timezone.now()
    if job.state == S.FAILED:
        _poll_for_late_clip(job, now=now)
        return
    past_deadline = now >= deadline(job)
    try:
        status = get_provider(job.provider).get_task(job.provider_task_id or "")
    except ProviderError as exc:
        if not past_deadline:
            logger.info("Poll of job %s failed, will retry: %s", job.pk, exc.message)
            return
        status = None
    if status is not None and (status.state.is_final or not past_deadline):
        job_apply_status(job, status)
        return
    minutes = conf("DEADLINE_MINUTES")
    if job.state == S.CANCELED:
        close_canceled(job, note=f"No result within {minutes} minutes after cancel.")
        return
    # The provider may still finish it (and charge for it): look now and then, slowly.
    job_fail(
        job,
        reason=f"No result from the provider within {minutes} minutes; gave up waiting. A clip "
        "that still comes is stored and charged.",
        code="timeout",
        party=Party.SWEEP,
        allowed_from=[S.SUBMITTED, S.GENERATING],
        next_poll_at=now + datetime.timedelta(seconds=conf("LATE_POLL_SECONDS")),
    )


def _poll_for_late_clip(job: GenerationJob, *, now: datetime.datetime) -> None:
    """A timed-out job: a finished clip is taken; a failed task, or the time its result URL would
    have expired by, ends the looking."""
    try:
        status: TaskStatus | None = get_provider(job.provider).get_task(job.provider_task_id or "")
    except ProviderError as exc:
        logger.info("Late poll of job %s failed: %s", job.pk, exc.message)
        status = None
    if status is not None and status.state is TaskState.SUCCESS:
        job_apply_status(job, status)
        return
    expired = now >= (job.submitted_at or job.created) + datetime.timedelta(
        hours=conf("RESULT_URL_LIFETIME_HOURS")
    )
    if (status is not None and status.state is TaskState.FAIL) or expired:
        stopped = GenerationJob.objects.filter(
            pk=job.pk, state=S.FAILED, next_poll_at__isnull=False
        ).update(next_poll_at=None)
        if stopped:
            JobEvent.objects.create(
                job=job,
                from_state=S.FAILED,
                to_state=S.FAILED,
                reason="Stopped looking for a late clip: "
                + (
                    "the provider reports the task failed."
                    if not expired
                    else "its result would have expired by now."
                ),
            )
