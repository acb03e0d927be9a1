"""Reads of teams, projects, prompts and jobs, always through the teams a user belongs to.

A user sees only their teams' rows: every query here starts from the user's memberships, so an
object of another team is simply not found (the API answers 404, never its data).
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from billing import selectors as billing_selectors
from videos.models import (
    Invitation,
    InvitationStatus,
    GenerationJob,
    Membership,
    Project,
    Prompt,
    PromptVersion,
    Role,
    Team,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

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


def team_list(*, user: AbstractBaseUser) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("created", "id")


def team_ids(*, user: AbstractBaseUser) -> list[int]:
    return list(Membership.objects.filter(user=user).values_list("team_id", flat=True))


def team_roles(*, user: AbstractBaseUser) -> dict[int, str]:
    """The user's role in each of their teams: team id -> role (one query)."""
    return dict(Membership.objects.filter(user=user).values_list("team_id", "role"))


def team_get(*, user: AbstractBaseUser, team_id: Any) -> Team | None:
    pk = id_or_none(team_id)
    return team_list(user=user).filter(pk=pk).first() if pk else None


def team_default(*, user: AbstractBaseUser) -> Team | None:
    """The user's own team: where a project goes when they name none."""
    return Team.objects.filter(personal_for=user, memberships__user=user).first()


def invitations_for(
    *, user: AbstractBaseUser, now: datetime.datetime | None = None
) -> QuerySet[Invitation]:
    """The pending, unexpired invitations addressed to the user, by username or by email."""
    addressed = Q(username__iexact=user.get_username())
    email = getattr(user, "email", "")
    if email:
        addressed |= Q(email__iexact=email)
    return (
        Invitation.objects.filter(addressed, status=InvitationStatus.PENDING)
        .filter(expires_at__gt=now or timezone.now())
        .select_related("team", "invited_by")
        .order_by("created", "id")
    )


def invitation_for(*, user: AbstractBaseUser, invitation_id: Any) -> Invitation | None:
    """One of the user's invitations (expired ones too, so accepting says why it cannot)."""
    pk = id_or_none(invitation_id)
    if pk is None:
        return None
    addressed = Q(username__iexact=user.get_username())
    email = getattr(user, "email", "")
    if email:
        addressed |= Q(email__iexact=email)
    return Invitation.objects.filter(addressed, pk=pk).select_related("team").first()


def team_invitations(*, team: Team) -> QuerySet[Invitation]:
    """A team's invitations still waiting for an answer (for its owners)."""
    return team.invitations.filter(status=InvitationStatus.PENDING).select_related("invited_by")


def role_in(*, user: AbstractBaseUser, team_id: int) -> str | None:
    return (
        Membership.objects.filter(user=user, team_id=team_id).values_list("role", flat=True).first()
    )


def role_allows(role: str | None, needed: str) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


def membership_list(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("created", "id")


def membership_get(*, team: Team, user_id: Any) -> Membership | None:
    pk = id_or_none(user_id)
    return membership_list(team=team).filter(user_id=pk).first() if pk else None


# --- Projects and prompts --------------------------------------------------------------------


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    return (
        Project.objects.filter(team__memberships__user=user)
        .select_related("team")
        .order_by("created", "id")
    )


def project_get(*, user: AbstractBaseUser, project_id: Any) -> Project | None:
    pk = id_or_none(project_id)
    return project_list(user=user).filter(pk=pk).first() if pk else None


def prompt_list(*, user: AbstractBaseUser) -> QuerySet[Prompt]:
    current = PromptVersion.objects.filter(prompt=OuterRef("pk")).order_by("-number")
    return (
        Prompt.objects.filter(project__team__memberships__user=user)
        .select_related("project")
        .annotate(
            current_number=Subquery(current.values("number")[:1]),
            current_text=Subquery(current.values("text")[:1]),
        )
        .order_by("created", "id")
    )


def prompt_get(*, user: AbstractBaseUser, prompt_id: Any) -> Prompt | None:
    pk = id_or_none(prompt_id)
    return prompt_list(user=user).filter(pk=pk).first() if pk else None


def prompt_version_list(*, prompt: Prompt) -> QuerySet[PromptVersion]:
    return prompt.versions.select_related("created_by").order_by("-number")


def prompt_version_visible(*, user: AbstractBaseUser) -> QuerySet[PromptVersion]:
    return PromptVersion.objects.filter(
        prompt__project__team__memberships__user=user
    ).select_related("prompt")


# --- Jobs ------------------------------------------------------------------------------------


def _jobs_with_cost() -> QuerySet[GenerationJob]:
    return (
        GenerationJob.objects.select_related("asset", "created_by")
        .annotate(cost_usd=billing_selectors.job_charge_subquery())
        .order_by("-created")
    )


def job_list(*, user: AbstractBaseUser) -> QuerySet[GenerationJob]:
    """The user's teams' jobs, newest first, each with `cost_usd` (its charge, or None)."""
    return _jobs_with_cost().filter(team__memberships__user=user)


def job_get(*, user: AbstractBaseUser, job_id: Any) -> GenerationJob | None:
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
