"""Request rates per user, per team and per client address (for logging in), from the
`DEFAULT_THROTTLE_RATES` setting ("user", "team", "token").

Counts live in the cache (Redis or the database), so every web process shares them. Rates are
read at each request, so a changed setting applies without a restart of the class.
"""

from __future__ import annotations

from typing import Any, cast

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from videos import selectors


class _SettingsRate:
    scope: str

    def get_rate(self) -> str | None:
        # The stubs type rates as numbers; DRF's are strings such as "600/min".
        return cast("str | None", api_settings.DEFAULT_THROTTLE_RATES.get(self.scope))


class UserRateThrottle(_SettingsRate, SimpleRateThrottle):
    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # unauthenticated requests are refused before they cost anything
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class JobReadRateThrottle(UserRateThrottle):
    """Reading one of one's own jobs (polling it) has its own, higher rate, so a script that
    follows a job does not use up the requests of every other script of the same user."""

    scope = "job_read"


def rate_limit_headers(throttles: list[Any]) -> dict[str, str]:
    """`RateLimit-Limit/Remaining/Reset` for the tightest of the rates a request counted in."""
    counted = [t for t in throttles if getattr(t, "key", None) and hasattr(t, "history")]
    if not counted:
        return {}
    tightest = min(counted, key=lambda t: t.num_requests - len(t.history))
    now = tightest.timer()
    oldest = tightest.history[-1] if tightest.history else now
    return {
        "RateLimit-Limit": str(tightest.num_requests),
        "RateLimit-Remaining": str(max(tightest.num_requests - len(tightest.history), 0)),
        "RateLimit-Reset": str(max(int(oldest + tightest.duration - now + 0.999), 0)),
    }


class TokenRateThrottle(_SettingsRate, SimpleRateThrottle):
    """Logging in, per client address: slows down password guessing."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TeamRateThrottle(_SettingsRate, SimpleRateThrottle):
    """All members of a team share one rate, counted and enforced only for the team a request
    acts on: the one its URL names (a team, project, prompt or job), else the one of the project
    in its query or body. A request that acts on no single team counts against none, so one
    team's traffic never throttles its members' work in another team."""

    scope = "team"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        team_id = acting_team_id(request, getattr(view, "kwargs", {}) or {})
        if team_id is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": team_id}


def acting_team_id(request: Request, kwargs: dict[str, Any]) -> int | None:
    """The team of the user's that a request acts on, or None (none, or several)."""
    user = request.user
    if not user.is_authenticated:
        return None
    found: Any = None
    if "team_id" in kwargs:
        found = selectors.team_get(user=user, team_id=kwargs["team_id"])
        return found.pk if found else None
    if "project_id" in kwargs:
        found = selectors.project_get(user=user, project_id=kwargs["project_id"])
    elif "job_id" in kwargs:
        # Not a UUID: pk=None, which matches no job.
        found = (
            selectors.job_list(user=user)
            .filter(pk=selectors.uuid_or_none(kwargs["job_id"]))  # type: ignore[misc]
            .first()
        )
    elif "prompt_id" in kwargs:
        found = selectors.prompt_get(user=user, prompt_id=kwargs["prompt_id"])
        found = found.project if found else None
    else:
        project_id = request.query_params.get("project")
        if project_id is None and request.method == "POST" and isinstance(request.data, dict):
            jobs = request.data.get("jobs")
            first = (
                jobs[0] if isinstance(jobs, list) and jobs and isinstance(jobs[0], dict) else None
            )
            project_id = (first or request.data).get("project")
        if project_id is not None:
            found = selectors.project_get(user=user, project_id=project_id)
    return getattr(found, "team_id", None) if found is not None else None
