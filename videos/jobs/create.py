"""Step 1, create: validate and price a job, admit it under its budget, queue it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from billing import services as billing
from billing.selectors import PriceMissing, project_money
from videos.image_urls import image_url_problem
from videos.jobs import gate
from videos.jobs.enqueue import enqueue_submit
from videos.jobs.states import S
from videos.models import (
    GenerationJob,
    JobEvent,
    Kind,
    PromptVersion,
)
from videos.providers import get_provider
from videos.providers.base import (
    IMAGE_MAX_BYTES,
    GenerationRequest,
    InvalidRequest,
    check_image_bytes,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from videos.models import Project

logger = logging.getLogger(__name__)


class BudgetExceeded(Exception):
    """The project's monthly budget cannot cover the job; the message says by how much."""


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


def balance_check(specs: list[JobSpec]) -> gate.Balance:
    """What the provider balance says of these jobs (it never raises; see `Balance.covers`)."""
    return gate.balance_for(credits_needed=sum(spec.credits for spec in specs))


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
