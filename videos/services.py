"""Writes of teams, memberships, projects and prompts, and the API's ways of creating jobs (once
per idempotency key, or a whole batch at once) on top of `videos.jobs`. Budgets are billing's
(`billing.services.budget_set`).

Every function takes keyword arguments, checks its own rules and raises `ValidationError`
(field -> message) for bad input or a `Conflict` when the request contradicts what exists.
Who may call which function is decided by the caller (the API's role checks).
"""

from __future__ import annotations

import datetime
import hashlib
import re
import secrets
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from billing import selectors as billing_selectors
from billing import services as billing_services
from videos import prompt_templates
from videos.jobs import (
    BudgetExceeded,
    JobSpec,
    budget_check,
    job_prepare,
    jobs_queue,
)
from videos.models import (
    PROMPT_MAX_LENGTH,
    ApiToken,
    GenerationJob,
    Invitation,
    InvitationStatus,
    Kind,
    Membership,
    Project,
    Prompt,
    PromptVersion,
    Provider,
    Role,
    Team,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile


class Conflict(Exception):
    """The request contradicts what exists; the message says what and why."""

    code = "conflict"


class ProjectNotEmpty(Conflict):
    code = "project_not_empty"


class LastOwner(Conflict):
    code = "last_owner"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


# --- Teams and members -----------------------------------------------------------------------


class TeamNotEmpty(Conflict):
    code = "team_not_empty"


def _check_team_slug(*, slug: str, team: Team | None = None) -> None:
    taken = Team.objects.filter(slug=slug)
    if team is not None:
        taken = taken.exclude(pk=team.pk)
    if taken.exists():
        raise ValidationError({"slug": "Another team has this slug."})


def team_create(*, name: str, slug: str, owner: User | None = None) -> Team:
    """A new team; with `owner`, that user is its first owner.

    Without an owner the team starts with no members (the admin adds them in the same save).
    """
    _check_team_slug(slug=slug)
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name, slug=slug)
            if owner is not None:
                Membership.objects.create(user=owner, team=team, role=Role.OWNER)
    except IntegrityError:  # another request took the slug between our check and insert
        raise ValidationError({"slug": "Another team has this slug."}) from None
    return team


def team_update(*, team: Team, name: str | None = None, slug: str | None = None) -> Team:
    """Rename a team and/or change its slug; None keeps the current value."""
    changes = {
        field: value for field, value in (("name", name), ("slug", slug)) if value is not None
    }
    if "slug" in changes:
        _check_team_slug(slug=changes["slug"], team=team)
    for field, value in changes.items():
        setattr(team, field, value)
    try:
        with transaction.atomic():
            team.save(update_fields=list(changes))
    except IntegrityError:
        raise ValidationError({"slug": "Another team has this slug."}) from None
    return team


def team_delete_check(*, team: Team) -> None:
    """Raises `TeamNotEmpty` when the team has projects, whose history is kept forever."""
    if Project.objects.filter(team=team).exists():
        raise TeamNotEmpty("The team has projects, whose history is kept; it cannot be deleted.")


def team_delete(*, team: Team) -> None:
    """Delete a team that has no projects, and its memberships with it."""
    with transaction.atomic():
        # Locked, so a project inserted at the same moment is either seen by the check or
        # refused by its foreign key, never left without a team.
        Team.objects.select_for_update().filter(pk=team.pk).first()
        team_delete_check(team=team)
        team.delete()


def personal_team_ensure(*, user: User) -> Team | None:
    """Give the user their own team, as its owner, unless they have it already.

    Every user has one from their first sign-in, whatever other teams they were invited to: it
    is where their projects go when they name no team. Returns the new team, or None. The
    user's row is locked so two first requests at once make one team, not two.
    """
    if Team.objects.filter(personal_for=user).exists():
        return None
    with transaction.atomic():
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        if Team.objects.filter(personal_for=user).exists():
            return None
        username = user.get_username()
        slug = f"{slugify(username)[:80] or 'user'}-{user.pk}"
        if Team.objects.filter(slug=slug).exists():  # someone named a team so by hand
            slug = f"{slug}-{secrets.token_hex(4)}"
        team = team_create(name=f"{username}'s team"[:120], slug=slug, owner=user)
        Team.objects.filter(pk=team.pk).update(personal_for=user)
        team.personal_for_id = user.pk
    return team


def membership_add_user(*, team: Team, user: User, role: str) -> Membership:
    """Add `user` to the team with `role`; a user who is a member already is a `Conflict`."""
    already = Conflict(f"{user.get_username()} is already a member of {team}.")
    if Membership.objects.filter(team=team, user=user).exists():
        raise already
    try:
        with transaction.atomic():
            return Membership.objects.create(team=team, user=user, role=role)
    except IntegrityError:
        raise already from None


def _owners_left_without(membership: Membership) -> int:
    return (
        Membership.objects.filter(team_id=membership.team_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .count()
    )


def membership_set_role(*, membership: Membership, role: str) -> Membership:
    """Change a member's role; a team always keeps at least one owner (else `LastOwner`)."""
    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=membership.team_id).first()
        membership.refresh_from_db(fields=["role"])  # as it is now, under the team's lock
        if (
            membership.role == Role.OWNER
            and role != Role.OWNER
            and not _owners_left_without(membership)
        ):
            raise LastOwner("A team needs an owner: make someone else owner first.")
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def membership_remove(*, membership: Membership) -> None:
    """Take a member out of the team; its last owner stays (`LastOwner`)."""
    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=membership.team_id).first()
        membership.refresh_from_db(fields=["role"])
        if membership.role == Role.OWNER and not _owners_left_without(membership):
            raise LastOwner("A team needs an owner: make someone else owner first.")
        membership.delete()


def membership_leave(*, team: Team, by: User) -> None:
    """`by` leaves the team. The last owner cannot (`LastOwner`), nor anyone their own team."""
    if team.personal_for_id == by.pk:
        raise Conflict("This is your own team; it stays yours.")
    membership = Membership.objects.filter(team=team, user=by).first()
    if membership is not None:
        membership_remove(membership=membership)


# --- Invitations: the only way into a team ---------------------------------------------------


INVITATION_LIFETIME = datetime.timedelta(days=7)


class InvitationClosed(Conflict):
    code = "invitation_closed"


def invitation_create(
    *,
    team: Team,
    role: str,
    by: User | None,
    username: str = "",
    email: str = "",
    now: datetime.datetime | None = None,
) -> Invitation:
    """Invite someone by username or email to take `role` in the team, for 7 days.

    The answer is the same whether or not such a user exists, so inviting reveals nothing about
    who has an account. Inviting the same person again renews the pending invitation (with the
    new role) instead of making a second one.
    """
    if bool(username) == bool(email):
        raise ValidationError({"non_field_errors": "Name the person by username or by email."})
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Role.values)}."})
    now = now or timezone.now()
    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=team.pk).first()
        pending = Invitation.objects.filter(team=team, status=InvitationStatus.PENDING)
        same = (
            pending.filter(username=username) if username else pending.filter(email__iexact=email)
        )
        existing = same.first()
        if existing is not None:
            existing.role = role
            existing.invited_by = by
            existing.expires_at = now + INVITATION_LIFETIME
            existing.save(update_fields=["role", "invited_by", "expires_at"])
            return existing
        return Invitation.objects.create(
            team=team,
            username=username,
            email=email,
            role=role,
            invited_by=by,
            expires_at=now + INVITATION_LIFETIME,
        )


def invitation_revoke(*, invitation: Invitation, by: User | None) -> Invitation:
    """Withdraw a pending invitation; an answered one is `InvitationClosed`."""
    return _close_invitation(invitation, status=InvitationStatus.REVOKED, by=by)


def invitation_accept(
    *, invitation: Invitation, by: User, now: datetime.datetime | None = None
) -> Membership:
    """`by` (the invitee) joins the team with the invitation's role.

    An expired, revoked or answered invitation is `InvitationClosed`; accepting one for a team
    `by` is in already changes nothing.
    """
    with transaction.atomic():
        _close_invitation(invitation, status=InvitationStatus.ACCEPTED, by=by, now=now)
        existing = Membership.objects.filter(team_id=invitation.team_id, user=by).first()
        if existing is not None:
            return existing
        return membership_add_user(team=invitation.team, user=by, role=invitation.role)


def invitation_decline(
    *, invitation: Invitation, by: User, now: datetime.datetime | None = None
) -> Invitation:
    return _close_invitation(invitation, status=InvitationStatus.DECLINED, by=by, now=now)


def _close_invitation(
    invitation: Invitation,
    *,
    status: str,
    by: User | None,
    now: datetime.datetime | None = None,
) -> Invitation:
    now = now or timezone.now()
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.status != InvitationStatus.PENDING:
            raise InvitationClosed(f"This invitation was {locked.status} already.")
        if status != InvitationStatus.REVOKED and locked.expires_at <= now:
            raise InvitationClosed("This invitation has expired; ask for a new one.")
        locked.status = status
        locked.answered_by = by
        locked.answered_at = now
        locked.save(update_fields=["status", "answered_by", "answered_at"])
    return locked


# --- Projects --------------------------------------------------------------------------------


PROJECT_FIELDS = (
    "name",
    "description",
    "default_duration",
    "default_aspect_ratio",
    "default_sound",
    "provider",
)
PROJECT_NAME_TAKEN = "The team has a project with this name already."


def _check_project_name(*, team: Team, name: str, project: Project | None = None) -> None:
    taken = Project.objects.filter(team=team, name=name)
    if project is not None:
        taken = taken.exclude(pk=project.pk)
    if taken.exists():
        raise ValidationError({"name": PROJECT_NAME_TAKEN})


def project_check_provider(provider: str) -> None:
    """Raise ValidationError unless `provider` is one a project may use on this installation."""
    if provider not in Provider.values:
        raise ValidationError(
            {"provider": f"Provider must be one of: {', '.join(Provider.values)}."}
        )
    if provider == Provider.KLING and not (settings.KLING_ACCESS_KEY and settings.KLING_SECRET_KEY):
        raise ValidationError(
            {
                "provider": "The official Kling API is not set up here: an operator must set "
                "KLING_ACCESS_KEY and KLING_SECRET_KEY first."
            }
        )


def project_create(
    *,
    team: Team,
    name: str,
    description: str = "",
    default_duration: int | None = None,
    default_aspect_ratio: str | None = None,
    default_sound: bool | None = None,
    provider: str | None = None,
    monthly_budget_usd: Decimal | None = None,
) -> Project:
    """A new project; with `monthly_budget_usd` its spend is capped each month. Its jobs go to
    `provider` ("kie" unless given; jobs already made keep theirs when it changes)."""
    _check_project_name(team=team, name=name)
    if provider is not None:
        project_check_provider(provider)
    project = Project(team=team, name=name, description=description)
    for field, value in (
        ("default_duration", default_duration),
        ("default_aspect_ratio", default_aspect_ratio),
        ("default_sound", default_sound),
        ("provider", provider),
    ):
        if value is not None:
            setattr(project, field, value)
    try:
        with transaction.atomic():
            project.save()
            if monthly_budget_usd is not None:
                billing_services.budget_set(project=project, monthly_cap_usd=monthly_budget_usd)
    except IntegrityError:  # another request took the name between our check and insert
        raise ValidationError({"name": PROJECT_NAME_TAKEN}) from None
    return project


def project_update(*, project: Project, **changes: Any) -> Project:
    """Change a project's name, description or job defaults (the keys of `changes`)."""
    unknown = set(changes) - set(PROJECT_FIELDS)
    if unknown:
        raise ValueError(f"project_update cannot change {', '.join(sorted(unknown))}")
    if "name" in changes:
        _check_project_name(team=project.team, name=changes["name"], project=project)
    if "provider" in changes and changes["provider"] != project.provider:
        project_check_provider(changes["provider"])
    for field, value in changes.items():
        setattr(project, field, value)
    try:
        with transaction.atomic():
            project.save(update_fields=[*changes, "updated"])
    except IntegrityError:
        raise ValidationError({"name": PROJECT_NAME_TAKEN}) from None
    return project


def project_delete_check(*, project: Project) -> None:
    """Raises `ProjectNotEmpty` when the project has jobs, prompts or money on it.

    They are history that is kept forever; such a project can be renamed, not deleted.
    """
    if GenerationJob.objects.filter(project=project).exists():
        raise ProjectNotEmpty("The project has jobs, which are kept forever; it cannot be deleted.")
    if Prompt.objects.filter(project=project).exists():
        raise ProjectNotEmpty(
            "The project has prompts, whose versions are kept; it cannot be deleted."
        )
    if billing_selectors.project_has_ledger_entries(project=project):
        raise ProjectNotEmpty("The project has ledger entries; it cannot be deleted.")


def project_delete(*, project: Project) -> None:
    """Delete a project that never had jobs, prompts or money on it (see the check)."""
    with transaction.atomic():
        # Locked, so a job created meanwhile waits and then finds no project, instead of a 500.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        project_delete_check(project=project)
        billing_services.budget_delete(project=project)
        project.delete()


# --- Prompts ---------------------------------------------------------------------------------


def _check_prompt_text(text: str) -> None:
    if not text.strip():
        raise ValidationError({"text": "The prompt must not be blank."})
    if len(text) > PROMPT_MAX_LENGTH:
        raise ValidationError(
            {"text": f"The prompt must be at most {PROMPT_MAX_LENGTH} characters."}
        )
    try:
        prompt_templates.check(text)
    except prompt_templates.TemplateError as exc:
        raise ValidationError({"text": str(exc)}) from None


def prompt_create(*, project: Project, title: str, text: str, by: User | None) -> Prompt:
    """A new prompt with its first version: a prompt never exists without text."""
    _check_prompt_text(text)
    with transaction.atomic():
        prompt = Prompt.objects.create(project=project, title=title, created_by=by)
        PromptVersion.objects.create(prompt=prompt, number=1, text=text, created_by=by)
    return prompt


def prompt_update(
    *,
    prompt: Prompt,
    by: User | None,
    title: str | None = None,
    text: str | None = None,
) -> Prompt:
    """Rename a prompt and/or give it new text. New text becomes a new version; the old ones
    stay, as jobs refer to them. Text equal to the current version adds nothing."""
    if text is not None:
        _check_prompt_text(text)
    with transaction.atomic():
        # Locked, so two edits at once get consecutive version numbers instead of a clash.
        locked = Prompt.objects.select_for_update().get(pk=prompt.pk)
        if title is not None and title != locked.title:
            locked.title = title
        current = locked.current_version
        if text is not None and (current is None or current.text != text):
            PromptVersion.objects.create(
                prompt=locked,
                number=(current.number + 1) if current else 1,
                text=text,
                created_by=by,
            )
        locked.save(update_fields=["title", "updated"])
    return locked


# --- Jobs through the API --------------------------------------------------------------------


def image_sha256(image: UploadedFile) -> str:
    image.seek(0)
    digest = hashlib.sha256()
    for chunk in image.chunks():
        digest.update(chunk)
    image.seek(0)
    return digest.hexdigest()


def _stored_image_sha256(job: GenerationJob) -> str | None:
    if not job.source_image:
        return None
    digest = hashlib.sha256()
    with job.source_image.open("rb") as image:
        for chunk in iter(lambda: image.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def job_asks_for_the_same(job: GenerationJob, inputs: dict[str, Any]) -> bool:
    """Whether `inputs` (job_prepare's arguments) ask for the job that `job` is.

    Omitted choices mean the project's defaults, so a body that spells out the default and one
    that leaves it out ask for the same job. An uploaded image is compared by its bytes.
    """
    project: Project = inputs["project"]
    version: PromptVersion | None = inputs.get("prompt_version")
    image: UploadedFile | None = inputs.get("image")
    sound = inputs.get("sound")
    if (
        job.project_id != project.pk
        or job.kind != inputs["kind"]
        or job.prompt_version_id != (version.pk if version else None)
        or (version is None and job.prompt_text != (inputs.get("prompt") or ""))
        or job.duration != (inputs.get("duration") or project.default_duration)
        or job.aspect_ratio
        != (
            (inputs.get("aspect_ratio") or project.default_aspect_ratio)
            if job.kind == Kind.TEXT_TO_VIDEO
            else ""
        )
        or job.sound != (project.default_sound if sound is None else sound)
        or job.negative_prompt != (inputs.get("negative_prompt") or "")
        or job.mode != (inputs.get("mode") or "")
    ):
        return False
    if image is not None or job.source_image:
        return image is not None and _stored_image_sha256(job) == image_sha256(image)
    return job.source_image_url == (inputs.get("image_url") or "")


def _job_with_key(project: Project, key: str) -> GenerationJob | None:
    return GenerationJob.objects.filter(team_id=project.team_id, idempotency_key=key).first()


def job_create_once(
    *,
    by: User | None,
    idempotency_key: str | None,
    wait_for_credits: bool = False,
    **inputs: Any,
) -> tuple[GenerationJob, bool]:
    """Create a job (see `job_create`), once per idempotency key within the team.

    Returns (job, created). A key that names a job asking for the same thing returns that job
    (created False); a key already used for a different job raises `IdempotencyKeyReused`.
    """
    project: Project = inputs["project"]
    if idempotency_key:
        existing = _job_with_key(project, idempotency_key)
        if existing is not None:
            return _replayed(existing, inputs), False
    spec = job_prepare(**inputs)
    try:
        with transaction.atomic():
            [job] = jobs_queue(
                [spec],
                by=by,
                idempotency_keys=[idempotency_key or None],
                wait_for_credits=wait_for_credits,
            )
    except IntegrityError:
        # The same key was used by a request running beside this one, which saved first.
        existing = _job_with_key(project, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replayed(existing, inputs), False
    return job, True


def _replayed(job: GenerationJob, inputs: dict[str, Any]) -> GenerationJob:
    if not job_asks_for_the_same(job, inputs):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different job; use a new key for a new job."
        )
    return job


class BatchItemInvalid(Exception):
    """Some jobs of a batch are invalid: `errors[i]` holds job i's field messages."""

    def __init__(self, errors: dict[int, dict[str, list[str]]]) -> None:
        super().__init__(f"{len(errors)} jobs of the batch are invalid")
        self.errors = errors


def batch_key(idempotency_key: str, index: int) -> str:
    return f"{idempotency_key}/{index}"


def jobs_prepare_batch(
    *, items: list[dict[str, Any]], refuse_over_budget: bool = True
) -> tuple[list[JobSpec], str | None]:
    """Validate and price every job of a batch (one job is a batch of one), saving nothing.

    Returns the specs and, when a project's budget cannot cover its share of the batch, why
    (only when `refuse_over_budget` is False: otherwise that raises `BudgetExceeded`).
    Raises `BatchItemInvalid` with every job's errors when any job is invalid.
    """
    specs: list[JobSpec] = []
    errors: dict[int, dict[str, list[str]]] = {}
    # Each project's budget must cover all of the batch's jobs in it, not each one alone; the
    # money of all the batch's projects is read once.
    money = billing_selectors.projects_money({inputs["project"] for inputs in items})
    batch_usd: dict[int, Decimal] = {}
    refusal: str | None = None
    for index, inputs in enumerate(items):
        project: Project = inputs["project"]
        so_far = batch_usd.get(project.pk, Decimal("0"))
        try:
            spec = job_prepare(**inputs)
        except ValidationError as exc:
            errors[index] = exc.message_dict
            continue
        try:
            budget_check(
                project, spec.estimated_cost_usd, extra_usd=so_far, money=money[project.pk]
            )
        except BudgetExceeded as exc:
            refusal = refusal or (f"Job {index}: {exc}" if len(items) > 1 else str(exc))
        batch_usd[project.pk] = so_far + spec.estimated_cost_usd
        specs.append(spec)
    if errors:
        raise BatchItemInvalid(errors)
    if refusal is not None and refuse_over_budget:
        raise BudgetExceeded(refusal)
    return specs, refusal


def jobs_create_batch(
    *,
    by: User | None,
    items: list[dict[str, Any]],
    idempotency_key: str | None = None,
    wait_for_credits: bool = False,
) -> tuple[list[GenerationJob], bool]:
    """Create every job of a batch, or none of them. Returns (jobs, created).

    With an idempotency key, job i gets the key "<key>/<i>"; a repeated batch returns its jobs
    (created False) and a different batch under the same key raises `IdempotencyKeyReused`.
    """
    if idempotency_key:
        replay = _batch_replay(items, idempotency_key)
        if replay is not None:
            return replay, False
    specs, _ = jobs_prepare_batch(items=items)
    try:
        with transaction.atomic():
            jobs = jobs_queue(
                specs,
                by=by,
                idempotency_keys=[
                    batch_key(idempotency_key, index) if idempotency_key else None
                    for index in range(len(specs))
                ],
                wait_for_credits=wait_for_credits,
            )
    except IntegrityError:
        replay = _batch_replay(items, idempotency_key) if idempotency_key else None
        if replay is None:
            raise
        return replay, False
    return jobs, True


def _batch_replay(items: list[dict[str, Any]], idempotency_key: str) -> list[GenerationJob] | None:
    """The jobs a batch with this key made before, or None if the key is new."""
    # Keys are unique per team, and a batch may reach projects of several teams.
    wanted = [
        (inputs["project"].team_id, batch_key(idempotency_key, index))
        for index, inputs in enumerate(items)
    ]
    # The database's prefix match may ignore case (SQLite's LIKE does); the batch's own keys are
    # exactly "<key>/<index>".
    own_key = re.compile(re.escape(idempotency_key) + r"/\d+")
    existing = {
        (job.team_id, job.idempotency_key): job
        for job in GenerationJob.objects.filter(
            team_id__in={team_id for team_id, _ in wanted},
            idempotency_key__startswith=f"{idempotency_key}/",
        )
        if own_key.fullmatch(job.idempotency_key or "")
    }
    if not existing:
        return None
    if set(existing) != set(wanted):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different batch; use a new key for a new batch."
        )
    return [_replayed(existing[key], inputs) for key, inputs in zip(wanted, items, strict=True)]


# --- API tokens ------------------------------------------------------------------------------

API_TOKEN_PREFIX = "rf_"


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new named personal token; returns it and its key, which is never shown again."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. the script that uses it."})
    key = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name[:100], prefix=key[:10], key_sha256=api_token_hash(key)
    )
    return token, key


def api_token_revoke(*, token: ApiToken) -> None:
    token.delete()


def api_token_used(*, token: ApiToken, now: datetime.datetime | None = None) -> None:
    """Note that the token was used, at most once a minute (a write per request would not do)."""
    now = now or timezone.now()
    if token.last_used is None or now - token.last_used > datetime.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now


def api_token_get_or_create(*, user: User) -> str:
    """The user's API token (one a user; made on first request). Returns its key."""
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=user)
    return token.key
