"""Who may do what: every request is authenticated; a user reaches only their teams' objects
(selectors answer None for the rest, which the views turn into 404); within a team, viewers
read, editors and owners write, owners manage budgets and members."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from rest_framework.exceptions import NotFound, PermissionDenied

from videos import selectors

if TYPE_CHECKING:
    from django.contrib.auth.models import User

T = TypeVar("T")


def require_role(user: User, team_id: int, needed: str) -> str:
    """The user's role in the team, if it is at least `needed`; else 403 (404 for non-members)."""
    role = selectors.role_in(user=user, team_id=team_id)
    if role is None:
        raise NotFound()
    refusal = selectors.role_refusal(role, needed)
    if refusal:
        raise PermissionDenied(refusal)
    return role


def found(obj: T | None) -> T:
    """`obj`, or 404 when the selector found nothing the user may see."""
    if obj is None:
        raise NotFound()
    return obj
