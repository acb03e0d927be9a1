"""The life of a generation job, top to bottom: create, submit, callback/poll, retrieve, settle.

Every state change is one conditional UPDATE (`WHERE state = <from>`) plus a `JobEvent`, so two
workers, a late callback and a poll can race without doing the work twice. Work that talks to
the provider runs in django-q2 workers (`videos.tasks`); nothing here waits for rendering in a
web request.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.tasks import async_task

from billing import services as billing
from billing.selectors import PriceMissing, project_money
from videos.models import (
    Asset,
    GenerationJob,
    JobEvent,
    JobState,
    Kind,
    ProviderAccount,
    PromptVersion,
)
from videos.providers import get_provider
from videos.providers.base import (
    Action,
    IMAGE_MAX_BYTES,
    GenerationRequest,
    InvalidRequest,
    ProviderError,
    TaskState,
    TaskStatus,
    check_image_bytes,
)
from videos import submission_gate
from videos.image_urls import image_url_problem
from videos.retrieval import ResultRejected, ResultUnreachable, store_result
from videos.transitions import note, transition

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from videos.models import Project

logger = logging.getLogger(__name__)

S = JobState
# A result may still arrive for these: the provider holds (or may hold) a task of ours.
AWAITING_RESULT_STATES = (S.SUBMITTING, S.SUBMITTED, S.GENERATING, S.NEEDS_ATTENTION)
# A job failed with one of these codes was given up on, not refused: a clip may still come.
GIVEN_UP_CODES = {"timeout", "given_up"}
# `held_for` of a queued job whose reservation the budget refused.
HELD_FOR_BUDGET = "budget"


def _conf(name: str) -> Any:
    return settings.PIPELINE[name]


class BudgetExceeded(Exception):
    """The project's monthly budget cannot cover the job; the message says by how much."""


# --- 1. Create -------------------------------------------------------------------------------


class CreditsShort(Exception):
    """The provider balance cannot pay for the jobs; the message says what to do."""


@dataclass(frozen=True)
class JobSpec:
    """A validated, priced job that is ready to be saved."""

    project: Project
    kind: str
    prompt_text: str
    prompt_version: PromptVersion | None
    duration: int
    aspect_ratio: str
    sound: bool
    source_image: UploadedFile | None
    image_url: str
    estimated_cost_usd: Decimal
    credits: int  # what the provider's price list says the clip takes


def job_prepare(
    *,
    project: Project,
    kind: str,
    prompt_text: str | None = None,
    prompt_version: PromptVersion | None = None,
    duration: int | None = None,
    aspect_ratio: str | None = None,
    sound: bool | None = None,
    source_image: UploadedFile | None = None,
    image_url: str = "",
) -> JobSpec:
    """Validate and price a job without saving anything or opening a transaction.

    Raises ValidationError (field -> message) for bad input. Missing choices take the project's
    defaults. An image URL's host is resolved here, so call this before any transaction: a slow
    resolver must not hold the database's write lock.
    """
    if prompt_version is not None:
        if prompt_version.prompt.project_id != project.pk:
            raise ValidationError({"prompt_version": "That prompt belongs to another project."})
        prompt_text = prompt_version.text
    duration = duration or project.default_duration
    aspect_ratio = aspect_ratio or project.default_aspect_ratio
    sound = project.default_sound if sound is None else sound

    errors: dict[str, str] = {}
    if kind == Kind.IMAGE_TO_VIDEO:
        if source_image is None and not image_url:
            errors["image"] = "Image to video needs an image: upload one or give its URL."
        elif source_image is not None and image_url:
            errors["image"] = "Give an image or an image URL, not both."
        elif source_image is not None:
            errors.update(_image_errors(source_image))
        elif problem := image_url_problem(image_url):
            errors["image_url"] = problem
    elif kind == Kind.TEXT_TO_VIDEO:
        if source_image is not None or image_url:
            errors["image"] = "Text to video takes no image; choose image to video to animate one."
    else:
        errors["kind"] = f"Kind must be one of: {', '.join(Kind.values)}."
    request = GenerationRequest(
        kind=kind,
        prompt=prompt_text or "",
        duration=duration,
        sound=sound,
        aspect_ratio=aspect_ratio if kind == Kind.TEXT_TO_VIDEO else None,
        # A stand-in URL lets the provider check the rest before the image is uploaded.
        image_url=(image_url or "https://upload.invalid/pending.png")
        if kind == Kind.IMAGE_TO_VIDEO
        else None,
    )
    try:
        get_provider().validate(request)
    except InvalidRequest as exc:
        for field, message in exc.errors.items():
            errors.setdefault("image" if field == "image_urls" else field, message)
    if errors:
        raise ValidationError(errors)

    try:
        price = billing.job_price(duration=duration, sound=sound)
    except PriceMissing as exc:
        raise ValidationError({"duration": str(exc)}) from exc
    return JobSpec(
        project=project,
        kind=kind,
        prompt_text=prompt_text or "",
        prompt_version=prompt_version,
        duration=duration,
        aspect_ratio=aspect_ratio,
        sound=sound,
        source_image=source_image,
        image_url=image_url,
        estimated_cost_usd=price.usd,
        credits=price.credits,
    )


def budget_check(
    project: Project, amount: Decimal, *, extra_usd: Decimal = Decimal("0"), jobs: int = 1
) -> None:
    """Raise BudgetExceeded unless the project's month can take `amount` (for `jobs` clips)
    beside `extra_usd` already asked for."""
    money = project_money(project)
    if not money.can_accept(amount + extra_usd):
        what = f"this ${amount} clip" if jobs == 1 else f"these {jobs} jobs (${amount})"
        raise BudgetExceeded(
            f"The project's monthly budget cannot cover {what}: "
            f"${money.remaining_usd - extra_usd} of ${money.cap_usd} is left this month."
        )


def balance_check(specs: list[JobSpec]) -> submission_gate.Balance:
    """What the provider balance says of these jobs (it never raises; see `Balance.covers`)."""
    return submission_gate.balance_for(credits_needed=sum(spec.credits for spec in specs))


def jobs_queue(
    specs: list[JobSpec],
    *,
    created_by: AbstractBaseUser | None,
    idempotency_keys: list[str | None] | None = None,
    wait_for_credits: bool = False,
) -> list[GenerationJob]:
    """Save prepared jobs as `queued`, all of them or none; each is submitted after commit.

    Under the lock of every budget involved, each project's budget must cover its share of the
    jobs (else BudgetExceeded), and unless `wait_for_credits` the provider balance must cover
    them all (else CreditsShort), so concurrent requests can never oversubscribe either.
    """
    keys = idempotency_keys or [None] * len(specs)
    by_project: dict[int, list[JobSpec]] = {}
    for spec in specs:
        by_project.setdefault(spec.project.pk, []).append(spec)
    with transaction.atomic():
        billing.budgets_lock(by_project)
        for own in by_project.values():
            total = sum((spec.estimated_cost_usd for spec in own), Decimal("0"))
            budget_check(own[0].project, total, jobs=len(own))
        if not wait_for_credits:
            balance = balance_check(specs)
            if not balance.covers:
                raise CreditsShort(balance.message)
        return [
            job_save(spec, created_by=created_by, idempotency_key=key)
            for spec, key in zip(specs, keys, strict=True)
        ]


def job_create(
    *,
    created_by: AbstractBaseUser | None,
    idempotency_key: str | None = None,
    wait_for_credits: bool = False,
    **inputs: Any,
) -> GenerationJob:
    """Validate, price and save a job as `queued`; it is submitted once the transaction commits.

    Takes `job_prepare`'s arguments and raises what it and `jobs_queue` raise.
    """
    spec = job_prepare(**inputs)
    return jobs_queue(
        [spec],
        created_by=created_by,
        idempotency_keys=[idempotency_key],
        wait_for_credits=wait_for_credits,
    )[0]


def job_save(
    spec: JobSpec, *, created_by: AbstractBaseUser | None, idempotency_key: str | None = None
) -> GenerationJob:
    """Save a prepared job as `queued` and submit it on commit (`jobs_queue` checks money)."""
    job = GenerationJob(
        team_id=spec.project.team_id,
        project=spec.project,
        kind=spec.kind,
        prompt_version=spec.prompt_version,
        prompt_text=spec.prompt_text,
        source_image_url=spec.image_url,
        duration=spec.duration,
        aspect_ratio=spec.aspect_ratio,
        sound=spec.sound,
        estimated_cost_usd=spec.estimated_cost_usd,
        idempotency_key=idempotency_key,
        created_by=created_by,
        state=S.QUEUED,
        state_reason="Waiting for a worker to submit it.",
    )
    with transaction.atomic():
        if spec.source_image is not None:
            spec.source_image.seek(0)
            job.source_image.save(spec.source_image.name or "image", spec.source_image, save=False)
        job.save()
        JobEvent.objects.create(job=job, from_state="", to_state=S.QUEUED, reason="Created")
        transaction.on_commit(lambda: enqueue_submit(job.pk))
    return job


def _image_errors(image: UploadedFile) -> dict[str, str]:
    if image.size and image.size > IMAGE_MAX_BYTES:
        return {"image": "The image is larger than 10 MB."}
    image.seek(0)
    try:
        check_image_bytes(image.read())
    except InvalidRequest as exc:
        return {"image": next(iter(exc.errors.values()))}
    finally:
        image.seek(0)
    return {}


def enqueue_submit(job_id: Any) -> None:
    async_task("videos.tasks.submit_job", str(job_id), task_name=f"submit-{job_id}")


# --- 2. Submit -------------------------------------------------------------------------------


def job_submit(job_id: Any) -> None:
    """Send one queued job to the provider, if the budget, credits and rate limit allow.

    A job that cannot go now stays `queued` with its reason and a `submit_after` time; the sweep
    tries again later. `submitting` is committed before the request and the task id after it,
    so a worker killed in between leaves evidence that the job may already be paid for.
    """
    job = GenerationJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.state != S.QUEUED:
        return
    now = timezone.now()
    if job.submit_after and job.submit_after > now:
        return
    if _fail_if_its_month_ended(job, now=now):
        return
    account = submission_gate.account_for(job.provider)
    if account.is_paused:
        note(job, f"Held: submissions are paused ({account.pause_reason}).")
        return

    if not billing.budget_reserve(job=job):
        money = project_money(job.project)
        # Look again at the next sweep, behind the jobs that can go now.
        GenerationJob.objects.filter(pk=job.pk, state=S.QUEUED).update(
            submit_after=now + datetime.timedelta(minutes=_conf("SWEEP_INTERVAL_MINUTES")),
            held_for=HELD_FOR_BUDGET,
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
    submission_gate.refresh_credits_if_stale(account, provider)
    if job.kind == Kind.IMAGE_TO_VIDEO and not job.source_image_url:
        if not _upload_source_image(job, provider):
            return

    if submission_gate.claim_submission_slot(job) is not None:
        return

    request = GenerationRequest(
        kind=job.kind,
        prompt=job.prompt_text,
        duration=job.duration,
        sound=job.sound,
        aspect_ratio=job.aspect_ratio if job.kind == Kind.TEXT_TO_VIDEO else None,
        image_url=job.source_image_url or None,
    )
    callback_url = f"{settings.PUBLIC_BASE_URL}{job.callback_path}"
    try:
        task_id = provider.create_task(request, callback_url=callback_url)
    except InvalidRequest as exc:
        _fail(job, reason=f"The provider would refuse this job: {exc}", code="invalid")
        return
    except ProviderError as exc:
        _submission_refused(job, exc)
        return
    except Exception as exc:  # we cannot know whether the request reached the provider
        logger.exception("createTask for job %s ended unexpectedly", job.pk)
        transition(
            job,
            to=S.NEEDS_ATTENTION,
            allowed_from=[S.SUBMITTING],
            reason=f"createTask ended unexpectedly ({type(exc).__name__}); the provider may have "
            "accepted it, so it is not sent again automatically.",
        )
        return

    _record_task_id(job, task_id)


def _fail_if_its_month_ended(job: GenerationJob, *, now: datetime.datetime) -> bool:
    """A job that waited for its month's budget until the month ended fails: the next month's
    budget was never asked about it, so it must not be charged there silently."""
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if job.held_for != HELD_FOR_BUDGET or job.created >= month_start:
        return False
    month = job.created.strftime("%B %Y")
    return _fail(
        job,
        reason=f"The project's budget for {month} could not cover it before the month ended; it "
        "was never sent and nothing was charged. Retry it to queue it against this month's budget.",
        code="budget_month_ended",
        allowed_from=[S.QUEUED],
    )


def _record_task_id(job: GenerationJob, task_id: str) -> None:
    now = timezone.now()
    moved = transition(
        job,
        to=S.SUBMITTED,
        allowed_from=[S.SUBMITTING, S.NEEDS_ATTENTION],
        reason=f"The provider accepted it as {task_id}.",
        provider_task_id=task_id,
        submitted_at=now,
        next_poll_at=now + datetime.timedelta(seconds=_conf("CALLBACK_GRACE_SECONDS")),
        poll_attempts=0,
    )
    if not moved:
        # A callback got here first and adopted the task; make sure the id is kept all the same.
        GenerationJob.objects.filter(pk=job.pk, provider_task_id__isnull=True).update(
            provider_task_id=task_id, submitted_at=now
        )


def _submission_refused(job: GenerationJob, exc: ProviderError) -> None:
    code = str(exc.code) if exc.code is not None else ""
    if exc.alert:
        logger.error("kie.ai refused job %s with code %s: %s", job.pk, code, exc.message)
    if exc.action is Action.FAIL:
        _fail(job, reason=f"The provider refused the job: {exc.message}", code=code, message=exc.message)
    elif exc.action is Action.PAUSE:
        submissions_pause(job.provider, code=code, reason=exc.message)
        _back_to_queue(job, reason=f"Held: submissions are paused ({exc.message}).", delay=None)
    elif exc.action is Action.UNKNOWN:
        transition(
            job,
            to=S.NEEDS_ATTENTION,
            allowed_from=[S.SUBMITTING],
            reason=f"No answer to createTask ({exc.message}); the provider may have accepted "
            "it, so it is not sent again automatically.",
        )
    else:
        delay = _retry_delay(exc, job.submit_attempts)
        _back_to_queue(job, reason=f"Will retry in {delay:.0f} s: {exc.message}", delay=delay)


def _back_to_queue(job: GenerationJob, *, reason: str, delay: float | None) -> None:
    submit_after = timezone.now() + datetime.timedelta(seconds=delay) if delay else None
    transition(job, to=S.QUEUED, allowed_from=[S.SUBMITTING], reason=reason, submit_after=submit_after)


def _backoff(attempt: int, *, initial: float, cap: float) -> float:
    return float(min(initial * 2 ** max(attempt - 1, 0), cap))


def _upload_source_image(job: GenerationJob, provider: Any) -> bool:
    """Turn the uploaded image into a URL the provider can fetch. False if the job must wait
    (or has failed: an image refused for good, or one that could not be uploaded in
    UPLOAD_MAX_ATTEMPTS tries)."""
    try:
        with job.source_image.open("rb") as image:
            url = provider.upload_image(image.read(), job.source_image.name.rsplit("/", 1)[-1])
    except InvalidRequest as exc:
        _fail(job, reason=f"The image cannot be used: {exc}", code="invalid", allowed_from=[S.QUEUED])
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
        _fail(
            job,
            reason=f"The provider refused the image: {exc.message}",
            code=code or "invalid",
            message=exc.message,
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
    if attempts >= _conf("UPLOAD_MAX_ATTEMPTS"):
        _fail(
            job,
            reason=f"The image could not be uploaded in {attempts} attempts: {exc.message}",
            code=code or "upload_failed",
            message=exc.message,
            allowed_from=[S.QUEUED],
        )
        return
    delay = _retry_delay(exc, attempts)
    GenerationJob.objects.filter(pk=job.pk, state=S.QUEUED).update(
        submit_after=timezone.now() + datetime.timedelta(seconds=delay)
    )
    note(job, f"Will retry uploading the image in {delay:.0f} s: {exc.message}")


def _retry_delay(exc: ProviderError, attempts: int) -> float:
    """The provider's Retry-After, up to RETRY_AFTER_MAX_SECONDS, else exponential back-off."""
    if exc.retry_after is not None:
        return min(exc.retry_after, float(_conf("RETRY_AFTER_MAX_SECONDS")))
    return _backoff(
        attempts, initial=_conf("SUBMIT_RETRY_INITIAL_SECONDS"), cap=_conf("SUBMIT_RETRY_MAX_SECONDS")
    )


def submissions_pause(provider: str, *, code: str, reason: str) -> None:
    """Stop every worker from submitting to `provider` until `submissions_resume`."""
    submission_gate.pause(provider, code=code, reason=reason)


def submissions_resume(provider: str) -> None:
    """Let submissions go again and send what was held."""
    submission_gate.resume(provider)
    for job_id in GenerationJob.objects.filter(provider=provider, state=S.QUEUED).values_list(
        "pk", flat=True
    ):
        enqueue_submit(job_id)


# --- 3. Callback and poll --------------------------------------------------------------------


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
    if not cache.add(_callback_lock_key(job.pk), 1, timeout=_conf("CALLBACK_DEDUP_SECONDS")):
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
            logger.warning("Callback for job %s names task %s, not its own; ignored", job.pk, task_id)
            return
        try:
            status = get_provider(job.provider).get_task(task_id)
        except ProviderError as exc:
            logger.warning("Could not confirm callback for job %s: %s", job.pk, exc.message)
            if job.provider_task_id is None:
                JobEvent.objects.create(
                    job=job, from_state=job.state, to_state=job.state,
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
            allowed_from=[S.SUBMITTING, S.NEEDS_ATTENTION],
            reason=reason,
            next_poll_at=now + datetime.timedelta(seconds=_conf("CALLBACK_GRACE_SECONDS")),
        )


def job_apply_status(job: GenerationJob, status: TaskStatus) -> None:
    """Move the job by what the provider says of its task (from a callback or a poll)."""
    if job.provider_task_id is None:
        _adopt(job, status.task_id, reason=f"Adopted task {status.task_id} from the provider's callback.")
    if status.state is TaskState.SUCCESS:
        _result_ready(job, status)
    elif status.state is TaskState.FAIL:
        message = status.fail_message or "The provider could not generate the clip."
        if job.state == S.CANCELED:
            _close_canceled(job, note=f"Generation failed after cancel: {message}")
        else:
            _fail(
                job,
                reason=f"Generation failed: {message}",
                code=status.fail_code or "501",
                message=message,
                allowed_from=AWAITING_RESULT_STATES,
            )
    elif status.state is TaskState.GENERATING:
        transition(
            job, to=S.GENERATING, allowed_from=[S.SUBMITTED], reason="The provider is generating it."
        )


def _result_ready(job: GenerationJob, status: TaskStatus) -> None:
    """A clip exists at the provider, and was paid for: it is stored and charged, whatever the
    job's state. A job we had given up on (deadline, an operator's decision) still succeeds."""
    if not status.result_urls:
        _fail(
            job,
            reason="The provider reported success without a result URL.",
            code="no_result",
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
        allowed_from=[*AWAITING_RESULT_STATES, *([S.FAILED] if late else [])],
        reason="The clip is ready; copying it into storage."
        + (" It arrived after the job was given up." if late else ""),
        next_poll_at=None,
        **fields,
    ):
        enqueue_retrieve(job.pk)


def enqueue_retrieve(job_id: Any) -> None:
    async_task("videos.tasks.retrieve_job", str(job_id), task_name=f"retrieve-{job_id}")


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
            delay = float(_conf("LATE_POLL_SECONDS"))
        else:
            delay = _backoff(
                attempts + 1, initial=_conf("POLL_INITIAL_SECONDS"), cap=_conf("POLL_MAX_SECONDS")
            )
        # Claim this poll: of two sweepers, only the one whose UPDATE matches goes on.
        claimed = GenerationJob.objects.filter(pk=job_id, next_poll_at=next_poll_at).update(
            next_poll_at=now + datetime.timedelta(seconds=delay),
            poll_attempts=F("poll_attempts") + 1,
        )
        if claimed:
            with _logged_failure("poll", job_id):
                job_poll(GenerationJob.objects.get(pk=job_id), now=now)
            polled += 1
    return polled


def job_poll(job: GenerationJob, *, now: datetime.datetime | None = None) -> None:
    now = now or timezone.now()
    if job.state == S.FAILED:
        _poll_for_late_clip(job, now=now)
        return
    past_deadline = now >= _deadline(job)
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
    minutes = _conf("DEADLINE_MINUTES")
    if job.state == S.CANCELED:
        _close_canceled(job, note=f"No result within {minutes} minutes after cancel.")
        return
    # The provider may still finish it (and charge for it): look now and then, slowly.
    _fail(
        job,
        reason=f"No result from the provider within {minutes} minutes; gave up waiting. A clip "
        "that still comes is stored and charged.",
        code="timeout",
        allowed_from=[S.SUBMITTED, S.GENERATING],
        next_poll_at=now + datetime.timedelta(seconds=_conf("LATE_POLL_SECONDS")),
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
        hours=_conf("RESULT_URL_LIFETIME_HOURS")
    )
    if (status is not None and status.state is TaskState.FAIL) or expired:
        stopped = GenerationJob.objects.filter(
            pk=job.pk, state=S.FAILED, next_poll_at__isnull=False
        ).update(next_poll_at=None)
        if stopped:
            JobEvent.objects.create(
                job=job, from_state=S.FAILED, to_state=S.FAILED,
                reason="Stopped looking for a late clip: "
                + ("the provider reports the task failed." if not expired
                   else "its result would have expired by now."),
            )


def _deadline(job: GenerationJob) -> datetime.datetime:
    return (job.submitted_at or job.created) + datetime.timedelta(minutes=_conf("DEADLINE_MINUTES"))


# --- 4. Retrieve -----------------------------------------------------------------------------


def job_retrieve(job_id: Any, *, now: datetime.datetime | None = None) -> None:
    """Copy the finished clip into storage, probe it, and settle; the job becomes `succeeded`.

    An expired result URL is refreshed (recordInfo, then download-url) and tried again; a result
    still unreachable after RETRIEVAL_DEADLINE_MINUTES, or one that is not a playable video,
    makes the job need attention: it is never called a success, and never silently dropped.
    A canceled job's clip is stored and charged the same way, and the job stays canceled.
    """
    job = GenerationJob.objects.select_related("project").get(pk=job_id)
    canceled = job.state == S.CANCELED
    if not (canceled and job.result_url) and job.state != S.RETRIEVING:
        return
    if not Asset.objects.filter(job=job).exists():
        try:
            store_result(job, get_provider(job.provider))
        except (ResultUnreachable, ResultRejected) as exc:
            _retrieval_failed(job, exc, now=now or timezone.now())
            return
        except Exception as exc:  # storage full, a bug: still a failure with its deadline
            logger.exception("Storing the result of job %s failed", job.pk)
            unexpected = ResultUnreachable(f"{type(exc).__name__}: {exc}")
            _retrieval_failed(job, unexpected, now=now or timezone.now())
            return
    _settle(job, canceled=canceled)


def _retrieval_failed(job: GenerationJob, exc: Exception, *, now: datetime.datetime) -> None:
    logger.warning("Result of job %s not stored: %s", job.pk, exc)
    give_up = isinstance(exc, ResultRejected) or now >= _retrieval_deadline(job)
    if not give_up:
        note(job, f"Could not copy the result into storage yet ({exc}); will try again.")
        return
    if job.state == S.CANCELED:
        # The provider was paid for it all the same.
        _settle(job, canceled=True, note=f"The clip could not be stored ({exc}).")
        return
    _retrieval_given_up(job, reason=f"The provider's result could not be stored ({exc})")


def _retrieval_given_up(job: GenerationJob, *, reason: str) -> bool:
    return transition(
        job,
        to=S.NEEDS_ATTENTION,
        allowed_from=[S.RETRIEVING],
        reason=f"{reason}; it was paid for, so its reservation is kept until someone decides.",
    )


def _retrieval_deadline(job: GenerationJob) -> datetime.datetime:
    started = (
        job.events.filter(to_state=S.RETRIEVING).order_by("-created").values_list("created", flat=True).first()
        or _deadline(job)
    )
    return started + datetime.timedelta(minutes=_conf("RETRIEVAL_DEADLINE_MINUTES"))


def _settle(job: GenerationJob, *, canceled: bool, note: str = "") -> None:
    with transaction.atomic():
        settlement = billing.job_settle(job=job, credits=job.provider_credits)
        charged = settlement.charged_usd
        if settlement.discrepancy:
            _flag_discrepancy(job, settlement.discrepancy)
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
                allowed_from=[S.RETRIEVING],
                reason=f"Stored and probed; charged ${charged}.",
                finished_at=timezone.now(),
            )


def _flag_discrepancy(job: GenerationJob, discrepancy: str) -> None:
    """Keep what did not add up where operators see it: on the job, and in its history."""
    GenerationJob.objects.filter(pk=job.pk).update(charge_discrepancy=discrepancy)
    job.charge_discrepancy = discrepancy
    JobEvent.objects.create(job=job, from_state=job.state, to_state=job.state, reason=discrepancy)
    logger.warning("Charge discrepancy on job %s: %s", job.pk, discrepancy)


# --- 5. Settle the failures, cancel, retry ---------------------------------------------------


def _fail(
    job: GenerationJob,
    *,
    reason: str,
    code: str = "",
    message: str = "",
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


def _close_canceled(job: GenerationJob, *, note: str) -> None:
    """Stop waiting for a canceled job's clip; a clip that still comes is stored and charged."""
    with transaction.atomic():
        closed = GenerationJob.objects.filter(
            pk=job.pk, state=S.CANCELED, next_poll_at__isnull=False
        ).update(next_poll_at=None)
        if closed:
            billing.job_release(job=job, note="Released: canceled and no clip arrived")
            JobEvent.objects.create(job=job, from_state=S.CANCELED, to_state=S.CANCELED, reason=note)


def job_cancel(job: GenerationJob, *, by: AbstractBaseUser | None = None) -> bool:
    """Cancel a job. One not yet sent is simply canceled and released; one the provider has is
    canceled here only: if its clip still arrives it is stored and charged, as it was paid for.
    Returns False if the job had already ended.
    """
    who = f" by {by}" if by else ""
    with transaction.atomic():
        if transition(
            job, to=S.CANCELED, allowed_from=[S.QUEUED], reason=f"Canceled{who}.",
            finished_at=timezone.now(),
        ):
            billing.job_release(job=job, note="Released: canceled before submission")
            return True
    return transition(
        job,
        to=S.CANCELED,
        allowed_from=AWAITING_RESULT_STATES,
        reason=f"Canceled{who} after it was sent; a clip that still arrives is kept and charged.",
        canceled_by_user=True,
        finished_at=timezone.now(),
        # Still awaiting the outcome: polling goes on until the clip arrives or the deadline.
        next_poll_at=job.next_poll_at or timezone.now(),
    )


def job_give_up(job: GenerationJob, *, by: AbstractBaseUser | None = None) -> bool:
    """An operator's decision on a job that needs attention: call it failed. Its reservation is
    released, unless the provider reported a finished clip, which it charged for: that is charged.
    A clip that still arrives later is stored and the job succeeds. False if not applicable."""
    who = f" by {by}" if by else ""
    with transaction.atomic():
        moved = transition(
            job,
            to=S.FAILED,
            allowed_from=[S.NEEDS_ATTENTION],
            reason=f"Marked failed{who} after review.",
            provider_error_code="given_up",
            finished_at=timezone.now(),
            next_poll_at=None,
        )
        if moved and job.result_url:
            settlement = billing.job_settle(job=job, credits=job.provider_credits)
            if settlement.discrepancy:
                _flag_discrepancy(job, settlement.discrepancy)
        elif moved:
            billing.job_release(job=job, note="Released: marked failed after review")
    return moved


def job_retry(
    job: GenerationJob, *, by: AbstractBaseUser | None = None, wait_for_credits: bool = False
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
            upload = SimpleUploadedFile(job.source_image.name.rsplit("/", 1)[-1], image.read())
    # Prepared before the transaction: an image URL is resolved again, outside any lock.
    spec = job_prepare(
        project=job.project,
        kind=job.kind,
        prompt_text=job.prompt_text,
        prompt_version=job.prompt_version,
        duration=job.duration,
        aspect_ratio=job.aspect_ratio,
        sound=job.sound,
        source_image=upload,
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
        [new] = jobs_queue([spec], created_by=by, wait_for_credits=wait_for_credits)
        GenerationJob.objects.filter(pk=new.pk).update(retry_of=job, attempt=job.attempt + 1)
    new.refresh_from_db()
    return new


# --- The sweep: what keeps jobs moving when a message or a worker was lost -------------------


@contextmanager
def _logged_failure(step: str, job_id: Any) -> Iterator[None]:
    """One job's trouble must not stop the sweep for every other job."""
    try:
        yield
    except Exception:
        logger.exception("Sweep: %s of job %s failed", step, job_id)


def sweep(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Recover stuck jobs, resend held submissions, poll overdue jobs. Safe to run anywhere,
    any number of times at once; slow work (submitting, downloading) goes to other tasks.
    Returns counts, for logs and tests."""
    now = now or timezone.now()
    stale = now - datetime.timedelta(seconds=_conf("STALE_STEP_SECONDS"))
    counts = {
        "needs_attention": 0, "retrieving": 0, "retrieval_gave_up": 0, "submitted": 0,
        "polled": 0, "budget_month_ended": 0,
    }

    for job in GenerationJob.objects.filter(state=S.SUBMITTING, updated__lt=stale):
        if transition(
            job,
            to=S.NEEDS_ATTENTION,
            allowed_from=[S.SUBMITTING],
            reason="A worker stopped after sending createTask and before saving the answer; "
            "the provider may have accepted it, so it is not sent again automatically.",
        ):
            counts["needs_attention"] += 1

    for job_id in GenerationJob.objects.filter(state=S.RETRIEVING, updated__lt=stale).values_list(
        "pk", flat=True
    ):
        job = GenerationJob.objects.get(pk=job_id)
        if now >= _retrieval_deadline(job):
            if _retrieval_given_up(
                job,
                reason=f"The result was not stored within "
                f"{_conf('RETRIEVAL_DEADLINE_MINUTES')} minutes ({job.state_reason})",
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
        if _fail_if_its_month_ended(job, now=now):
            counts["budget_month_ended"] += 1

    for provider in ProviderAccount.objects.filter(paused_at__isnull=False).values_list(
        "provider", flat=True
    ):
        with _logged_failure("resume check", provider):
            if submission_gate.credits_returned(provider):
                submissions_resume(provider)

    due = GenerationJob.objects.filter(
        Q(submit_after__isnull=True) | Q(submit_after__lte=now), state=S.QUEUED
    ).order_by("created")
    for job_id in due.values_list("pk", flat=True)[: _conf("SWEEP_SUBMIT_BATCH")]:
        enqueue_submit(job_id)
        counts["submitted"] += 1

    counts["polled"] = jobs_poll_due(now=now)

    # Canceled before the provider's task id was known: no poll can find it; stop waiting.
    deadline = now - datetime.timedelta(minutes=_conf("DEADLINE_MINUTES"))
    for job in GenerationJob.objects.filter(
        state=S.CANCELED, next_poll_at__isnull=False, provider_task_id__isnull=True,
        created__lt=deadline,
    ):
        _close_canceled(job, note="No task id and no clip arrived before the deadline.")
    return counts
