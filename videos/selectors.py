"""Reads of teams, projects, prompts and jobs, always through the teams a user belongs to.

A user sees only their teams' rows: every query here starts from the user's memberships, so an
object of another team is simply not found (the API answers 404, never its data).
"""

from __future__ import annotations

import datetime
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from billing import selectors as billing_selectors
from videos.models import (
    ApiToken,
    Batch,
    GenerationJob,
    Invitation,
    InvitationStatus,
    Membership,
    Project,
    Prompt,
    PromptVersion,
    ProviderAccount,
    Role,
    Team,
    WebhookEndpoint,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

ZERO = Decimal("0")
# Primary keys are 64-bit: a larger number cannot name a row, and some databases refuse it.
MAX_ID = 2**63 - 1

# What each role may do, weakest first: a role can do everything the ones before it can.
ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.OWNER: 2}


def id_or_none(value: Any) -> int | None:
    """`value` as a primary key, or None when it cannot be one (not a number, out of range)."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


def uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


# --- Teams and roles -------------------------------------------------------------------------


def team_list(*, user: User) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("created", "id")


def team_ids(*, user: User) -> list[int]:
    return list(Membership.objects.filter(user=user).values_list("team_id", flat=True))


def team_roles(*, user: User) -> dict[int, str]:
    """The user's role in each of their teams: team id -> role (one query)."""
    return dict(Membership.objects.filter(user=user).values_list("team_id", "role"))


def team_get(*, user: User, team_id: Any) -> Team | None:
    pk = id_or_none(team_id)
    return team_list(user=user).filter(pk=pk).first() if pk else None


def team_default(*, user: User) -> Team | None:
    """The user's own team: where a project goes when they name none."""
    return Team.objects.filter(personal_for=user, memberships__user=user).first()


def _addressed_to(user: User) -> Q:
    """Invitations meant for `user`: by their exact username (usernames differ in case only
    between different people), or by their email when no other account has that address."""
    addressed = Q(username=user.get_username())
    email = getattr(user, "email", "")
    if email and not type(user).objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
        addressed |= Q(email__iexact=email)
    return addressed


def invitations_for(*, user: User, now: datetime.datetime | None = None) -> QuerySet[Invitation]:
    """The pending, unexpired invitations addressed to the user, by username or by email."""
    return (
        Invitation.objects.filter(_addressed_to(user), status=InvitationStatus.PENDING)
        .filter(expires_at__gt=now or timezone.now())
        .select_related("team", "invited_by")
        .order_by("created", "id")
    )


def invitation_for(*, user: User, invitation_id: Any) -> Invitation | None:
    """One of the user's invitations (expired ones too, so accepting says why it cannot)."""
    pk = id_or_none(invitation_id)
    if pk is None:
        return None
    return Invitation.objects.filter(_addressed_to(user), pk=pk).select_related("team").first()


def team_invitations(*, team: Team) -> QuerySet[Invitation]:
    """A team's invitations still waiting for an answer (for its owners)."""
    return team.invitations.filter(status=InvitationStatus.PENDING).select_related("invited_by")


def role_in(*, user: User, team_id: int) -> str | None:
    return (
        Membership.objects.filter(user=user, team_id=team_id).values_list("role", flat=True).first()
    )


def role_allows(role: str | None, needed: str) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


WHAT_ROLES_MAY = {
    Role.EDITOR: "Only editors and owners of the team can do this; your role is {role}.",
    Role.OWNER: "Only owners of the team can do this; your role is {role}.",
}


def role_refusal(role: str, needed: str) -> str | None:
    """Why a member with `role` may not do what needs `needed`, or None when they may."""
    if role_allows(role, needed):
        return None
    return WHAT_ROLES_MAY[Role(needed)].format(role=role)


def membership_list(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("created", "id")


def membership_get(*, team: Team, user_id: Any) -> Membership | None:
    pk = id_or_none(user_id)
    return membership_list(team=team).filter(user_id=pk).first() if pk else None


# --- Projects and prompts --------------------------------------------------------------------


def project_list(*, user: User) -> QuerySet[Project]:
    return (
        Project.objects.filter(team__memberships__user=user)
        .select_related("team")
        .order_by("created", "id")
    )


def project_get(*, user: User, project_id: Any) -> Project | None:
    pk = id_or_none(project_id)
    return project_list(user=user).filter(pk=pk).first() if pk else None


def prompt_list(*, user: User) -> QuerySet[Prompt]:
    current = PromptVersion.objects.filter(prompt=OuterRef("pk")).order_by("-number")
    return (
        Prompt.objects.filter(project__team__memberships__user=user)
        .select_related("project")
        .annotate(
            current_number=Subquery(current.values("number")[:1]),
            current_id=Subquery(current.values("pk")[:1]),
            current_text=Subquery(current.values("text")[:1]),
        )
        .order_by("created", "id")
    )


def prompt_get(*, user: User, prompt_id: Any) -> Prompt | None:
    pk = id_or_none(prompt_id)
    return prompt_list(user=user).filter(pk=pk).first() if pk else None


def prompt_version_list(*, prompt: Prompt) -> QuerySet[PromptVersion]:
    return prompt.versions.select_related("created_by").order_by("-number")


def prompt_version_of(*, prompt: Prompt, number: int | None) -> PromptVersion | None:
    """Version `number` of the prompt, or its current one when `number` is None."""
    versions = prompt.versions.order_by("-number")
    return (versions.filter(number=number) if number is not None else versions).first()


def prompt_version_visible(*, user: User) -> QuerySet[PromptVersion]:
    return PromptVersion.objects.filter(
        prompt__project__team__memberships__user=user
    ).select_related("prompt")


# --- Jobs ------------------------------------------------------------------------------------


def _jobs_with_cost() -> QuerySet[GenerationJob]:
    """Jobs with their charge (`cost_usd`, or None) and the newest attempt made of them
    (`retried_as_id`, or None)."""
    newest_retry = GenerationJob.objects.filter(retry_of=OuterRef("pk")).order_by("-created")
    return (
        GenerationJob.objects.select_related("asset", "created_by")
        .annotate(
            cost_usd=billing_selectors.job_charge_subquery(),
            retried_as_id=Subquery(newest_retry.values("pk")[:1]),
        )
        .order_by("-created")
    )


def job_list(*, user: User) -> QuerySet[GenerationJob]:
    """The user's teams' jobs, newest first, each with `cost_usd` (its charge, or None)."""
    # The teams' ids as values, not a join: then the database reads a page from the
    # (team, -created) index instead of joining and sorting every job of the teams.
    return _jobs_with_cost().filter(team_id__in=team_ids(user=user))


def job_get(*, user: User, job_id: Any) -> GenerationJob | None:
    """One of the user's teams' jobs with its cost, clip and events; None if there is none."""
    pk = uuid_or_none(job_id)
    if pk is None:
        return None
    return job_list(user=user).prefetch_related("events").filter(pk=pk).first()


def jobs_with_details(jobs: list[GenerationJob]) -> list[GenerationJob]:
    """The jobs again, in the same order, read the way `job_get` reads one."""
    by_id = {
        job.pk: job
        for job in _jobs_with_cost().prefetch_related("events").filter(pk__in=[j.pk for j in jobs])
    }
    return [by_id[job.pk] for job in jobs]


def job_with_details(job: GenerationJob) -> GenerationJob:
    return jobs_with_details([job])[0]


def job_filter(
    jobs: QuerySet[GenerationJob], *, states: list[str] | None = None, text: str = ""
) -> QuerySet[GenerationJob]:
    """`jobs` narrowed to some states and to prompts containing `text` (any case)."""
    if states:
        jobs = jobs.filter(state__in=states)
    if text.strip():
        jobs = jobs.filter(prompt_text__icontains=text.strip())
    return jobs


@dataclass(frozen=True)
class JobPage:
    jobs: list[GenerationJob]
    has_older: bool
    before: GenerationJob | None  # the job this page starts after; None for the newest


def job_page(jobs: QuerySet[GenerationJob], *, before: Any = None, size: int) -> JobPage:
    """`size` of `jobs`, newest first, after the job `before` (by its id; one not among `jobs`
    is ignored, so another team's id shows the newest page). Read by an index, however deep."""
    before_id = uuid_or_none(before) if before else None
    after = jobs.filter(pk=before_id).first() if before_id else None
    ordered = jobs.order_by("-created", "-pk")
    if after is not None:
        ordered = ordered.filter(
            Q(created__lt=after.created) | Q(created=after.created, pk__lt=after.pk)
        )
    rows = list(ordered[: size + 1])
    return JobPage(jobs=rows[:size], has_older=len(rows) > size, before=after)


def job_counts(*, team: Team) -> dict[str, int]:
    """How many of the team's jobs are in each state (states with none are absent)."""
    rows = (
        GenerationJob.objects.filter(team=team)
        .order_by()
        .values("state")
        .annotate(jobs=Count("pk"))
        .values_list("state", "jobs")
    )
    return dict(rows)


def submission_pauses() -> QuerySet[ProviderAccount]:
    """The providers to which nothing is sent now, with the reason (see `videos.jobs.gate`)."""
    return ProviderAccount.objects.filter(paused_at__isnull=False).order_by("provider")


# States in which a job will not move again by itself: a waiter stops at them.
SETTLED_STATES = ("succeeded", "failed", "canceled", "needs_attention")


def job_wait(
    *,
    user: User,
    job_id: Any,
    seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> GenerationJob | None:
    """The job once it is settled or `seconds` have passed, whichever comes first.

    Holds no database connection while it waits: between two looks (every 0.25 s at first,
    then up to every second) the connection is closed, so a thousand waiters cost a thousand
    idle threads, not a thousand connections.
    """
    pk = uuid_or_none(job_id)
    if pk is None:
        return None
    deadline = time.monotonic() + seconds
    pause = 0.25
    while True:
        state = GenerationJob.objects.filter(pk=pk).values_list("state", flat=True).first()
        left = deadline - time.monotonic()
        if state is None or state in SETTLED_STATES or left <= 0:
            return job_get(user=user, job_id=pk)
        if not connection.in_atomic_block:
            connection.close()
        sleep(min(pause, left))
        pause = min(pause * 2, 1.0)


def batch_list(*, user: User) -> QuerySet[Batch]:
    """The user's teams' batches, newest first."""
    return (
        Batch.objects.filter(team__memberships__user=user)
        .select_related("project", "prompt_version__prompt", "created_by")
        .order_by("-created", "-id")
    )


def batch_get(*, user: User, batch_id: Any) -> Batch | None:
    pk = id_or_none(batch_id)
    return batch_list(user=user).filter(pk=pk).first() if pk else None


def webhook_list(*, user: User) -> QuerySet[WebhookEndpoint]:
    """The endpoints of projects whose team the user owns (owners alone manage them)."""
    return WebhookEndpoint.objects.filter(
        project__team__memberships__user=user, project__team__memberships__role=Role.OWNER
    ).select_related("project")


def webhook_get(*, user: User, webhook_id: Any) -> WebhookEndpoint | None:
    """An endpoint of one of the user's teams (any role: the door checks for owners)."""
    pk = id_or_none(webhook_id)
    if pk is None:
        return None
    return (
        WebhookEndpoint.objects.filter(pk=pk, project__team__memberships__user=user)
        .select_related("project")
        .first()
    )


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("created", "id")


def api_token_get(*, user: User, token_id: Any) -> ApiToken | None:
    pk = id_or_none(token_id)
    return api_tokens_of(user=user).filter(pk=pk).first() if pk else None


def api_token_by_key(key: str) -> ApiToken | None:
    """The active token with this key (looked up by its hash), with its user."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return ApiToken.objects.select_related("user").filter(key_sha256=digest).first()


def job_for_files(*, user: User | AnonymousUser, job_id: Any) -> GenerationJob | None:
    """The job whose files (clip, poster, source image) the user may fetch, or None.

    Members of the job's team may; so may active superusers, who see every team in the admin.
    Anyone else, signed in or not, gets None: a stranger learns nothing, not even that it exists.
    """
    pk = uuid_or_none(job_id)
    if pk is None or not user.is_authenticated or not user.is_active:
        return None
    jobs = GenerationJob.objects.select_related("asset")
    if not user.is_superuser:
        jobs = jobs.filter(team__memberships__user=user)
    return jobs.filter(pk=pk).first()
