"""Step 1, create: validate and price a job, admit it under its budget, queue it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from billing import services as billing
from billing.selectors import PriceMissing, ProjectMoney, project_money
from videos import prompt_templates
from videos.image_urls import image_url_problem
from videos.jobs import gate
from videos.jobs.clock import submissions_dispatch
from videos.jobs.states import INITIAL_STATE
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
    from django.contrib.auth.models import User

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
    aspect_ratio: str  # "" for image to video: the image decides
    sound: bool
    source_image: UploadedFile | None
    image_url: str
    negative_prompt: str  # "" unless the project's provider takes one
    mode: str  # "" for the provider's default
    estimated_cost_usd: Decimal
    credits: int  # what the provider's price list says the clip takes
    variables: dict[str, object]  # what filled the prompt version's placeholders


# What a door passes to `job_prepare`, under these names (API fields, admin and portal form fields).
JOB_INPUTS = (
    "project",
    "kind",
    "prompt",
    "prompt_version",
    "duration",
    "aspect_ratio",
    "sound",
    "image",
    "image_url",
    "variables",
    "negative_prompt",
    "mode",
)


def job_inputs(data: Mapping[str, Any]) -> dict[str, Any]:
    """`job_prepare`'s arguments from what a door read: its other keys are dropped, and an empty
    value means "not given" (a blank form field, an absent JSON key)."""
    return {name: data[name] for name in JOB_INPUTS if data.get(name) not in (None, "")}


def job_prepare(
    *,
    project: Project,
    kind: str,
    prompt: str | None = None,
    prompt_version: PromptVersion | None = None,
    duration: int | None = None,
    aspect_ratio: str | None = None,
    sound: bool | None = None,
    image: UploadedFile | None = None,
    image_url: str = "",
    variables: Mapping[str, object] | None = None,
    negative_prompt: str = "",
    mode: str = "",
) -> JobSpec:
    """Validate and price a job without saving anything or opening a transaction.

    Every door (the API, the admin, the portal) passes what it read under these names, and every
    rule that ties fields together lives here, once, with one wording. Raises ValidationError
    (field -> message) for bad input. Missing choices take the project's defaults. An image
    URL's host is resolved here, so call this before any transaction: a slow resolver must not
    hold the database's write lock.
    """
    errors: dict[str, str] = {}
    if prompt is not None and prompt_version is not None:
        errors["prompt"] = "Give a prompt or a prompt version, not both."
    elif prompt_version is not None:
        if prompt_version.prompt.project_id != project.pk:
            errors["prompt_version"] = "That prompt belongs to another project."
        # A saved prompt may be a template: its variables come from `variables`, strictly.
        try:
            prompt = prompt_templates.render(prompt_version.text, variables or {})
        except prompt_templates.TemplateError as exc:
            for name, message in exc.problems.items():
                errors[f"variables.{name}"] = message
            if not exc.problems:
                errors["prompt_version"] = str(exc)
            prompt = prompt_version.text
    elif variables:
        errors["variables"] = "Variables fill a saved prompt's placeholders: name the prompt."
    duration = duration or project.default_duration
    if kind == Kind.TEXT_TO_VIDEO:
        aspect_ratio = aspect_ratio or project.default_aspect_ratio
    sound = project.default_sound if sound is None else sound

    if image is not None and image_url:
        errors["image"] = "Upload an image or give its URL, not both."
    elif image is not None:
        errors.update(_image_errors(image))
    elif image_url and kind == Kind.IMAGE_TO_VIDEO and (problem := image_url_problem(image_url)):
        errors["image_url"] = problem
    if kind not in Kind.values:
        errors["kind"] = f"Kind must be one of: {', '.join(Kind.values)}."
    has_image = image is not None or bool(image_url)
    request = GenerationRequest(
        kind=kind,
        prompt=prompt or "",
        duration=duration,
        sound=sound,
        # Image to video takes its shape from the image: an aspect ratio asked for is refused.
        aspect_ratio=aspect_ratio,
        # The provider's own rules judge whether an image belongs here; an uploaded one stands
        # in as a placeholder URL until it is uploaded at submission.
        image_url=(image_url or "https://upload.invalid/pending.png") if has_image else None,
        negative_prompt=negative_prompt,
        mode=mode,
    )
    try:
        # The project's provider judges: each one takes its own options (mode, negative prompt).
        get_provider(project.provider).validate(request)
    except InvalidRequest as exc:
        for field, message in exc.errors.items():
            errors.setdefault("image" if field == "image_urls" else field, message)
    if errors:
        raise ValidationError(errors)

    try:
        price = billing.job_price(duration=duration, sound=sound, provider=project.provider)
    except PriceMissing as exc:
        raise ValidationError({"duration": str(exc)}) from exc
    return JobSpec(
        project=project,
        kind=kind,
        prompt_text=prompt or "",
        prompt_version=prompt_version,
        duration=duration,
        aspect_ratio=aspect_ratio or "",
        sound=sound,
        source_image=image,
        image_url=image_url,
        negative_prompt=negative_prompt,
        mode=mode,
        estimated_cost_usd=price.usd,
        credits=price.credits,
        variables=dict(variables or {}),
    )


def budget_check(
    project: Project,
    amount: Decimal,
    *,
    extra_usd: Decimal = Decimal("0"),
    jobs: int = 1,
    money: ProjectMoney | None = None,
) -> None:
    """Raise BudgetExceeded unless the project's month can take `amount` (for `jobs` clips)
    beside `extra_usd` already asked for. `money` is the project's, when the caller read it."""
    money = money or project_money(project)
    if not money.can_accept(amount + extra_usd):
        what = f"this ${amount:.2f} clip" if jobs == 1 else f"these {jobs} jobs (${amount:.2f})"
        remaining = cast(Decimal, money.remaining_usd)  # refused only under a cap: not None
        raise BudgetExceeded(
            f"The project's monthly budget cannot cover {what}: "
            f"${remaining - extra_usd:.2f} of ${money.cap_usd:.2f} is left this month."
        )


def balance_check(specs: list[JobSpec]) -> gate.Balance:
    """What the provider balance says of these jobs (it never raises; see `Balance.covers`).

    Jobs of several providers are judged against the one that covers least of its share."""
    needed: dict[str, int] = {}
    for spec in specs:
        needed[spec.project.provider] = needed.get(spec.project.provider, 0) + spec.credits
    balances = [
        gate.balance_for(credits_needed=credits, provider=provider)
        for provider, credits in sorted(needed.items())
    ] or [gate.balance_for(credits_needed=0)]
    return next((balance for balance in balances if not balance.covers), balances[0])


def credits_check(specs: list[JobSpec]) -> None:
    """Raise CreditsShort unless the provider balance can pay for these beside queued jobs."""
    balance = balance_check(specs)
    if not balance.covers:
        raise CreditsShort(balance.message)


def jobs_queue(
    specs: list[JobSpec],
    *,
    by: User | None,
    idempotency_keys: list[str | None] | None = None,
    wait_for_credits: bool = False,
) -> list[GenerationJob]:
    """Save prepared jobs as `queued`, all of them or none; after commit, as many as the
    provider's free slots allow are handed to workers (the clock hands over the rest as slots
    open).

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
            credits_check(specs)
        saved = jobs_save(specs, by=by, idempotency_keys=keys)
        transaction.on_commit(submissions_dispatch)
    return saved


def job_create(
    *,
    by: User | None,
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
        by=by,
        idempotency_keys=[idempotency_key],
        wait_for_credits=wait_for_credits,
    )[0]


def job_save(
    spec: JobSpec, *, by: User | None, idempotency_key: str | None = None
) -> GenerationJob:
    """Save a prepared job as `queued` (`jobs_queue` checks money and hands it to a worker)."""
    return jobs_save([spec], by=by, idempotency_keys=[idempotency_key])[0]


def jobs_save(
    specs: list[JobSpec], *, by: User | None, idempotency_keys: list[str | None]
) -> list[GenerationJob]:
    """Save prepared jobs as `queued`, with their first event: two INSERTs however many."""
    saved = [
        GenerationJob(
            team_id=spec.project.team_id,
            project=spec.project,
            kind=spec.kind,
            prompt_version=spec.prompt_version,
            prompt_text=spec.prompt_text,
            prompt_variables=spec.variables,
            source_image_url=spec.image_url,
            duration=spec.duration,
            aspect_ratio=spec.aspect_ratio,
            sound=spec.sound,
            negative_prompt=spec.negative_prompt,
            mode=spec.mode,
            provider=spec.project.provider,
            estimated_cost_usd=spec.estimated_cost_usd,
            idempotency_key=key,
            created_by=by,
            state_reason="Waiting for a worker to submit it.",
        )
        for spec, key in zip(specs, idempotency_keys, strict=True)
    ]
    with transaction.atomic():
        for spec, job in zip(specs, saved, strict=True):
            if spec.source_image is not None:
                spec.source_image.seek(0)
                job.source_image.save(
                    spec.source_image.name or "image", spec.source_image, save=False
                )
        GenerationJob.objects.bulk_create(saved)
        JobEvent.objects.bulk_create(
            JobEvent(job=job, from_state="", to_state=INITIAL_STATE, reason="Created")
            for job in saved
        )
    return saved


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
