"""Request rates per user, per team and per client address (for logging in), from the
`DEFAULT_THROTTLE_RATES` setting ("user", "team", "token").

Counts live in the cache (Redis or the database), so every web process shares them. Rates are
read at each request, so a changed setting applies without a restart of the class.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from videos import selectors


class _SettingsRate:
    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserRateThrottle(_SettingsRate, SimpleRateThrottle):
    scope = "user"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # unauthenticated requests are refused before they cost anything
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class TokenRateThrottle(_SettingsRate, SimpleRateThrottle):
    """Logging in, per client address: slows down password guessing."""

    scope = "token"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TeamRateThrottle(_SettingsRate, SimpleRateThrottle):
    """All members of a team share one rate; a member of several teams counts against each."""

    scope = "team"

    def allow_request(self, request: Request, view: Any) -> bool:
        self.rate = self.get_rate()
        if self.rate is None or not request.user or not request.user.is_authenticated:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.now = self.timer()
        histories: dict[str, list[float]] = {}
        for team_id in selectors.team_ids(user=request.user):
            key = self.cache_format % {"scope": self.scope, "ident": team_id}
            history = [moment for moment in self.cache.get(key, []) if moment > self.now - self.duration]
            if len(history) >= self.num_requests:
                self.history = history
                return self.throttle_failure()
            histories[key] = history
        for key, history in histories.items():
            history.insert(0, self.now)
            self.cache.set(key, history, self.duration)
        return True

    def get_cache_key(self, request: Request, view: Any) -> str | None:  # pragma: no cover
        raise NotImplementedError("TeamRateThrottle keeps one history per team")
