"""Step 2, submit: reserve the budget, upload the image, claim a slot, send createTask.

A job that cannot go now stays `queued` with its reason and a `submit_after` time. `submitting`
is committed before the request and the task id after it, so a worker killed in between leaves
evidence that the job may already be paid for.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from billing import services as billing
from billing.selectors import project_money
from videos.jobs import gate
from videos.jobs.endings import job_fail
from videos.jobs.states import HELD_FOR_BUDGET, Party, S, note, transition
from videos.jobs.timing import backoff, conf
from videos.models import (
    GenerationJob,
    Kind,
)
from videos.providers import get_provider
from videos.providers.base import (
    Action,
    GenerationRequest,
    InvalidRequest,
    ProviderError,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def job_submit(job_id: Any, *, now: datetime.datetime | None = None) -> None:
    """Send one queued job to the provider, if the budget, credits and rate limit allow.

    A job that cannot go now stays `queued` with its reason and a `submit_after` time; the clock
    hands it to a worker again once that time has come and a slot is free. `submitting` is
    committed before the request and the task id after it, so a worker killed in between leaves
    evidence that the job may already be paid for.
    """
    job = GenerationJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.state != S.QUEUED:
        return
    now = now or timezone.now()
    if job.submit_after and job.submit_after > now:
        return
    if fail_if_its_month_ended(job, now=now, party=Party.WORKER):
        return
    if not billing.budget_reserve(job=job):
        money = project_money(job.project)
        # Look again at the next sweep, behind the jobs that can go now.
        GenerationJob.objects.filter(pk=job.pk, state=S.QUEUED).update(
            submit_after=now + datetime.timedelta(minutes=conf("SWEEP_INTERVAL_MINUTES")),
            held_for=HELD_FOR_BUDGET,
            dispatched_at=None,
        )
        note(
            job,
            f"Waiting for budget: ${money.spent_usd + money.reserved_usd} of the project's "
            f"${money.cap_usd} monthly cap is spent or reserved and this clip costs "
            f"${job.estimated_cost_usd}.",
        )
        return
    if job.held_for:
        GenerationJob.objects.filter(pk=job.pk).update(held_for="")

    provider = get_provider(job.provider)
    image_data = None
    if job.kind == Kind.IMAGE_TO_VIDEO and not job.source_image_url:
        if provider.takes_inline_images:
            with job.source_image.open("rb") as image:
                image_data = image.read()
        elif not _upload_source_image(job, provider):
            return

    # Claimed under the account's lock, by the balance the clock read when it handed the job
    # over (at most CREDITS_CACHE_SECONDS old, less what was sent since); or paused.
    if gate.claim_submission_slot(job).wait is not None:
        return

    request = GenerationRequest(
        kind=job.kind,
        prompt=job.prompt_text,
        duration=job.duration,
        sound=job.sound,
        aspect_ratio=job.aspect_ratio if job.kind == Kind.TEXT_TO_VIDEO else None,
        image_url=job.source_image_url or None,
        negative_prompt=job.negative_prompt,
        mode=job.mode,
        image_data=image_data,
    )
    callback_url = f"{settings.PUBLIC_BASE_URL}{job.callback_path}"
    try:
        task_id = provider.create_task(request, callback_url=callback_url, reference=str(job.pk))
    except InvalidRequest as exc:
        job_fail(
            job,
            reason=f"The provider would refuse this job: {exc}",
            code="invalid",
            party=Party.WORKER,
        )
        return
    except ProviderError as exc:
        _submission_refused(job, exc, findable=provider.finds_tasks_by_reference)
        return
    except Exception as exc:  # we cannot know whether the request reached the provider
        logger.exception("createTask for job %s ended unexpectedly", job.pk)
        _outcome_unknown(
            job,
            f"createTask ended unexpectedly ({type(exc).__name__})",
            findable=provider.finds_tasks_by_reference,
        )
        return

    _record_task_id(job, task_id)


def fail_if_its_month_ended(job: GenerationJob, *, now: datetime.datetime, party: Party) -> bool:
    """A job that waited for its month's budget until the month ended fails: the next month's
    budget was never asked about it, so it must not be charged there silently."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if job.held_for != HELD_FOR_BUDGET or job.created >= month_start:
        return False
    month = job.created.strftime("%B %Y")
    return job_fail(
        job,
        reason=f"The project's budget for {month} could not cover it before the month ended; it "
        "was never sent and nothing was charged. Retry it to queue it against this month's budget.",
        code="budget_month_ended",
        party=party,
        allowed_from=[S.QUEUED],
    )


def _record_task_id(job: GenerationJob, task_id: str) -> None:
    now = timezone.now()
    moved = transition(
        job,
        to=S.SUBMITTED,
        party=Party.WORKER,
        allowed_from=[S.SUBMITTING, S.NEEDS_ATTENTION],
        reason=f"The provider accepted it as {task_id}.",
        provider_task_id=task_id,
        submitted_at=now,
        next_poll_at=now + datetime.timedelta(seconds=conf("CALLBACK_GRACE_SECONDS")),
        poll_attempts=0,
    )
    if not moved:
        # A callback got here first and adopted the task; make sure the id is kept all the same.
        GenerationJob.objects.filter(pk=job.pk, provider_task_id__isnull=True).update(
            provider_task_id=task_id, submitted_at=now
        )


def _outcome_unknown(job: GenerationJob, what: str, *, findable: bool) -> None:
    """The provider may or may not have the task. One that keeps our reference is asked by the
    sweep once the job is stale (it stays `submitting`); for any other a person decides."""
    if findable:
        note(job, f"{what}; the provider will be asked for it by this job's reference.")
        return
    transition(
        job,
        to=S.NEEDS_ATTENTION,
        party=Party.WORKER,
        allowed_from=[S.SUBMITTING],
        reason=f"{what}; the provider may have accepted it, so it is not sent again automatically.",
    )


def _submission_refused(job: GenerationJob, exc: ProviderError, *, findable: bool) -> None:
    code = str(exc.code) if exc.code is not None else ""
    if exc.alert:
        logger.error("%s refused job %s with code %s: %s", job.provider, job.pk, code, exc.message)
    if exc.action is Action.FAIL:
        job_fail(
            job,
            reason=f"The provider refused the job: {exc.message}",
            code=code,
            message=exc.message,
            party=Party.WORKER,
        )
    elif exc.action is Action.PAUSE:
        submissions_pause(job.provider, code=code, reason=exc.message)
        _back_to_queue(job, reason=f"Held: submissions are paused ({exc.message}).", delay=None)
    elif exc.action is Action.UNKNOWN:
        _outcome_unknown(job, f"No answer to createTask ({exc.message})", findable=findable)
    else:
        delay = _retry_delay(exc, job.submit_attempts)
        _back_to_queue(job, reason=f"Will retry in {delay:.0f} s: {exc.message}", delay=delay)


def _back_to_queue(job: GenerationJob, *, reason: str, delay: float | None) -> None:
    submit_after = timezone.now() + datetime.timedelta(seconds=delay) if delay else None
    transition(job, to=S.QUEUED, party=Party.WORKER, reason=reason, submit_after=submit_after)


def _upload_source_image(job: GenerationJob, provider: Any) -> bool:
    """Turn the uploaded image into a URL the provider can fetch. False if the job must wait
    (or has failed: an image refused for good, or one that could not be uploaded in
    UPLOAD_MAX_ATTEMPTS tries)."""
    try:
        with job.source_image.open("rb") as image:
            url = provider.upload_image(
                image.read(), (job.source_image.name or "").rsplit("/", 1)[-1]
            )
    except InvalidRequest as exc:
        job_fail(
            job,
            reason=f"The image cannot be used: {exc}",
            code="invalid",
            party=Party.WORKER,
            allowed_from=[S.QUEUED],
        )
        return False
    except ProviderError as exc:
        _upload_refused(job, exc)
        return False
    GenerationJob.objects.filter(pk=job.pk).update(source_image_url=url)
    job.source_image_url = url
    return True


def _upload_refused(job: GenerationJob, exc: ProviderError) -> None:
    code = str(exc.code or "")
    if exc.action is Action.FAIL:
        job_fail(
            job,
            reason=f"The provider refused the image: {exc.message}",
            code=code or "invalid",
            message=exc.message,
            party=Party.WORKER,
            allowed_from=[S.QUEUED],
        )
        return
    if exc.action is Action.PAUSE:
        submissions_pause(job.provider, code=code, reason=exc.message)
        note(job, f"Held: submissions are paused ({exc.message}).")
        return
    # Uploads come before any createTask, so until one succeeds the attempts are all uploads.
    GenerationJob.objects.filter(pk=job.pk).update(submit_attempts=F("submit_attempts") + 1)
    job.refresh_from_db(fields=["submit_attempts"])
    attempts = job.submit_attempts
    if attempts >= conf("UPLOAD_MAX_ATTEMPTS"):
        job_fail(
            job,
            reason=f"The image could not be uploaded in {attempts} attempts: {exc.message}",
            code=code or "upload_failed",
            message=exc.message,
            party=Party.WORKER,
            allowed_from=[S.QUEUED],
        )
        return
    delay = _retry_delay(exc, attempts)
    GenerationJob.objects.filter(pk=job.pk, state=S.QUEUED).update(
        submit_after=timezone.now() + datetime.timedelta(seconds=delay), dispatched_at=None
    )
    note(job, f"Will retry uploading the image in {delay:.0f} s: {exc.message}")


def _retry_delay(exc: ProviderError, attempts: int) -> float:
    """The provider's Retry-After, up to RETRY_AFTER_MAX_SECONDS, else exponential back-off."""
    if exc.retry_after is not None:
        return min(exc.retry_after, float(conf("RETRY_AFTER_MAX_SECONDS")))
    return backoff(
        attempts, initial=conf("SUBMIT_RETRY_INITIAL_SECONDS"), cap=conf("SUBMIT_RETRY_MAX_SECONDS")
    )


def submissions_pause(provider: str, *, code: str, reason: str) -> None:
    """Stop every worker from submitting to `provider` until `submissions_resume`."""
    gate.pause(provider, code=code, reason=reason)


def submissions_resume_if_credits_returned(provider: str) -> bool:
    """For an account paused for lack of credits: read its balance, and let submissions go
    again when it pays for a clip. Returns whether they went."""
    if gate.credits_returned(provider):
        submissions_resume(provider)
        return True
    return False


def submissions_resume(provider: str) -> None:
    """Let submissions go again and send what was held, as the free slots allow."""
    from videos.jobs.clock import submissions_dispatch  # the clock hands jobs to job_submit

    gate.resume(provider)
    GenerationJob.objects.filter(provider=provider, state=S.QUEUED).update(dispatched_at=None)
    submissions_dispatch()
