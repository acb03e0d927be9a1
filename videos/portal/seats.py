"""Which team the portal shows, and the signed-in user's role in it.

A user may belong to several teams; the portal shows one at a time (the team switcher keeps the
choice in the session). Pages about one object (a project, a job) take the object's team, so a
link shared by a teammate opens whatever team is current.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

from videos import selectors, services
from videos.models import GenerationJob, Project, Role, Team

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SESSION_TEAM = "portal_team_id"
SESSION_PERSONAL_CHECKED = "portal_personal_team_checked"


@dataclass(frozen=True)
class Seat:
    """The user's place in one team."""

    team: Team
    role: str

    @property
    def can_edit(self) -> bool:
        return selectors.role_allows(self.role, Role.EDITOR)

    @property
    def is_owner(self) -> bool:
        return selectors.role_allows(self.role, Role.OWNER)

    def require(self, needed: str) -> None:
        """PermissionDenied (403, saying why) unless the role is at least `needed`."""
        refusal = selectors.role_refusal(self.role, needed)
        if refusal:
            raise PermissionDenied(refusal)


def signed_in_user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # the portal's views require sign-in


def is_htmx(request: HttpRequest) -> bool:
    """Whether htmx sent the request (it wants a fragment, not a page); see django-htmx."""
    return bool(getattr(request, "htmx", False))


def current_seat(request: HttpRequest) -> Seat:
    """The team the user chose (or their own), with their role in it."""
    user = signed_in_user(request)
    if not request.session.get(SESSION_PERSONAL_CHECKED):
        # Every user has a team of their own from their first sign-in (as in the API).
        services.personal_team_ensure(user=user)
        request.session[SESSION_PERSONAL_CHECKED] = True
    roles = selectors.team_roles(user=user)
    chosen = request.session.get(SESSION_TEAM)
    team = None
    if chosen in roles:
        team = Team.objects.filter(pk=chosen).first()
    if team is None:
        # A shared team before one's own: someone invited to a team came to work in it.
        teams = selectors.team_list(user=user)
        team = teams.exclude(personal_for=user).first() or teams.first()
    if team is None:  # their own team was deleted and they are in no other
        team = services.personal_team_ensure(user=user)
        if team is None:
            raise PermissionDenied("You belong to no team.")
        roles = selectors.team_roles(user=user)
    return Seat(team=team, role=roles[team.pk])


def seat_in(request: HttpRequest, team_id: int) -> Seat | None:
    """The user's seat in the team of an object they opened (None: not a member), which
    becomes the team the portal shows."""
    role = selectors.role_in(user=signed_in_user(request), team_id=team_id)
    if role is None:
        return None
    request.session[SESSION_TEAM] = team_id
    team = Team.objects.get(pk=team_id)
    return Seat(team=team, role=role)


def team_choose(request: HttpRequest, team_id: Any) -> bool:
    """Show this team from now on; False when the user is not a member of it."""
    team = selectors.team_get(user=signed_in_user(request), team_id=team_id)
    if team is None:
        return False
    request.session[SESSION_TEAM] = team.pk
    return True


def portal_context(request: HttpRequest) -> dict[str, Any]:
    """What the layout shows on every portal page: the teams to switch between, the pending
    invitations. Computed lazily, so admin and API pages that never show them pay nothing."""
    if not request.resolver_match or request.resolver_match.namespace != "portal":
        return {}
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "my_teams": lambda: list(selectors.team_list(user=user)),
        "pending_invitations": lambda: list(selectors.invitations_for(user=user)),
    }


def project_seat(request: HttpRequest, project_id: Any) -> tuple[Project, Seat]:
    """A project the user may see, with their seat in its team; 404 for any other (as in the
    API: another team's project is not found, whether or not it exists)."""
    project = selectors.project_get(user=signed_in_user(request), project_id=project_id)
    seat = seat_in(request, project.team_id) if project is not None else None
    if project is None or seat is None:
        raise Http404("No such project.")
    return project, seat


def job_seat(request: HttpRequest, job_id: Any) -> tuple[GenerationJob, Seat]:
    """A job the user may see (with its cost, clip and events), with their seat in its team."""
    job = selectors.job_get(user=signed_in_user(request), job_id=job_id)
    seat = seat_in(request, job.team_id) if job is not None else None
    if job is None or seat is None:
        raise Http404("No such job.")
    return job, seat


def back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """Back to the portal page the form was on (its `next` field), or to `fallback`; never to
    another site."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = fallback
    return HttpResponseRedirect(target)
