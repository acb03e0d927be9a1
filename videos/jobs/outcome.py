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

from videos.jobs.clock import retrieval_lease_end
from videos.jobs.endings import close_canceled, job_fail
from videos.jobs.enqueue import enqueue_retrieve, enqueue_submit
from videos.jobs.retrieve import job_retrieve
from videos.jobs.states import AWAITING_RESULT_STATES, GIVEN_UP_CODES, Party, S, transition
from videos.jobs.timing import backoff, conf, deadline
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
    # News is on its way to a worker: no poll meanwhile. It is that worker's step for a lease,
    # like any other; should the worker die with it, a poll follows then.
    GenerationJob.objects.filter(
        pk=job.pk, state__in=[S.SUBMITTING, S.SUBMITTED, S.GENERATING], next_poll_at__isnull=False
    ).update(next_poll_at=timezone.now() + datetime.timedelta(seconds=conf("STEP_LEASE_SECONDS")))
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
            status = get_provider(job.provider).get_task(task_id, kind=job.kind)
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
            # Accepting the callback held the job's polls back for a lease;
            # the news was not taken, so polling resumes at its own pace.
            _poll_again(job, now=timezone.now())
            return
        if not _task_belongs_to(job, status):
            logger.warning("Task %s does not carry job %s's callback URL; ignored", task_id, job.pk)
            _poll_again(job, now=timezone.now())
            return
        if verified and payload.get("credits_consumed") is not None:
            status = replace(status, credits_consumed=Decimal(payload["credits_consumed"]))
        job_apply_status(job, status, retrieve_here=True)
    finally:
        cache.delete(_callback_lock_key(job_id))


def _task_belongs_to(job: GenerationJob, status: TaskStatus) -> bool:
    """A task the provider reports for us must have been created with this job's callback URL."""
    if job.provider_task_id == status.task_id:
        return True
    if status.external_task_id is not None:
        return status.external_task_id == str(job.pk)
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


def job_find_lost_task(job: GenerationJob, *, now: datetime.datetime) -> str:
    """Ask a provider that keeps our reference (the job's id, sent as `external_task_id`) what
    became of a createTask whose answer was lost, instead of leaving it to a person.

    Returns "adopted" (the task exists: the job follows it from now on), "resent" (the provider
    has no task with that reference: the job is queued and sent again, which cannot pay twice)
    or "unknown" (the provider could not say: asked again at the next sweep; past the job's
    deadline it needs attention after all).
    """
    try:
        status = get_provider(job.provider).find_task(str(job.pk), kind=job.kind)
    except ProviderError as exc:
        if now < deadline(job):
            GenerationJob.objects.filter(pk=job.pk, state=S.SUBMITTING).update(updated=now)
            logger.info("Could not look up job %s by its reference: %s", job.pk, exc.message)
            return "unknown"
        transition(
            job,
            to=S.NEEDS_ATTENTION,
            party=Party.SWEEP,
            allowed_from=[S.SUBMITTING],
            reason=f"createTask's answer was lost and the provider could not be asked about it "
            f"before the deadline ({exc.message}); it is not sent again automatically.",
        )
        return "unknown"
    if status is None:
        if transition(
            job,
            to=S.QUEUED,
            party=Party.SWEEP,
            allowed_from=[S.SUBMITTING],
            reason="The provider has no task with this job's reference: createTask never "
            "reached it. Sending it again.",
            submit_after=None,
            dispatched_at=None,
        ):
            enqueue_submit(job.pk)
        return "resent"
    _adopt(job, status.task_id, reason=f"Found task {status.task_id} by this job's reference.")
    job_apply_status(job, status)
    return "adopted"


def job_apply_status(
    job: GenerationJob, status: TaskStatus, *, retrieve_here: bool = False
) -> None:
    """Move the job by what the provider says of its task (from a callback or a poll).

    A finished clip is copied into storage by another task, or right here with `retrieve_here`
    (a worker that has just learned of it: no second hand-over, no second read of the job).
    """
    if job.provider_task_id is None:
        _adopt(
            job,
            status.task_id,
            reason=f"Adopted task {status.task_id} from the provider's callback.",
        )
    if status.state is TaskState.SUCCESS:
        _result_ready(job, status, retrieve_here=retrieve_here)
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


def _result_ready(job: GenerationJob, status: TaskStatus, *, retrieve_here: bool) -> None:
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
        retrieve_after=retrieval_lease_end(timezone.now()),
        retrieve_attempts=0,
        **fields,
    ):
        if retrieve_here:
            job_retrieve(job.pk, job=job)
        else:
            enqueue_retrieve(job.pk)


def job_poll_by_id(job_id: Any, *, now: datetime.datetime | None = None) -> None:
    """Poll the job with this id, if it still exists; errors are logged, not raised (the next
    poll is already scheduled)."""
    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None or not job_awaits_outcome(job):
        return  # a callback was handled while this poll waited for a worker
    try:
        job_poll(job, now=now)
    except Exception:
        logger.exception("Poll of job %s failed", job_id)


def job_poll(job: GenerationJob, *, now: datetime.datetime | None = None) -> None:
    now = now or timezone.now()
    if job.state == S.FAILED:
        _poll_for_late_clip(job, now=now)
        return
    past_deadline = now >= deadline(job)
    try:
        status = get_provider(job.provider).get_task(job.provider_task_id or "", kind=job.kind)
    except ProviderError as exc:
        if not past_deadline:
            logger.info("Poll of job %s failed, will retry: %s", job.pk, exc.message)
            _poll_again(job, now=timezone.now())
            return
        status = None
    if status is not None and (status.state.is_final or not past_deadline):
        job_apply_status(job, status, retrieve_here=True)
        if not status.state.is_final:
            # From now, not from when it came due: a poll that waited in the broker must not
            # come due again at once.
            _poll_again(job, now=timezone.now())
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


def _poll_again(job: GenerationJob, *, now: datetime.datetime) -> None:
    """The next poll, its back-off counted from this one's end (while a poll waits for a
    worker, the clock holds the next one back by a lease, not by the back-off)."""
    delay = backoff(
        job.poll_attempts, initial=conf("POLL_INITIAL_SECONDS"), cap=conf("POLL_MAX_SECONDS")
    )
    GenerationJob.objects.filter(
        pk=job.pk, state__in=[S.SUBMITTED, S.GENERATING, S.CANCELED]
    ).exclude(next_poll_at__isnull=True).update(
        next_poll_at=now + datetime.timedelta(seconds=delay)
    )


def _poll_for_late_clip(job: GenerationJob, *, now: datetime.datetime) -> None:
    """A timed-out job: a finished clip is taken; a failed task, or the time its result URL would
    have expired by, ends the looking."""
    try:
        status: TaskStatus | None = get_provider(job.provider).get_task(
            job.provider_task_id or "", kind=job.kind
        )
    except ProviderError as exc:
        logger.info("Late poll of job %s failed: %s", job.pk, exc.message)
        status = None
    if status is not None and status.state is TaskState.SUCCESS:
        job_apply_status(job, status, retrieve_here=True)
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
