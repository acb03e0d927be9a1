"""Team scoping for the admin, in one place: every admin class sees, offers and changes only
the rows of the teams its user belongs to, with the rights their role there gives, as the API
does (viewer reads; editor also creates and cancels jobs and edits prompts; owner also sets
budgets, invites and removes members). Django's model permissions play no part for staff.

- `TeamScopedAdmin` (model admins) and `TeamScopedInline` (inlines) narrow querysets, the
  choices of every foreign key, list filters, search, autocomplete and actions, and answer
  `has_*_permission` from the user's roles. Another team's object is simply not in the
  queryset, so its page by URL is "doesn't exist", never shown.
- `SuperusersOnly` is for what belongs to no team (teams themselves, prices, provider accounts,
  users, the task queue). The site wraps every admin that is not team-scoped in it
  (`ReelforgeAdminSite.register`), so a model admin nobody scoped is closed, not open.
- Superusers see and do everything the admin classes allow at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from videos import selectors
from videos.models import Role

if TYPE_CHECKING:
    from django.db.models import Field

# A right only superusers have; `None` is a right nobody has.
SUPERUSERS = "superusers"

# From each team-owned model to its team: the lookup path of the team's id.
TEAM_PATHS: dict[str, str] = {
    "videos.Team": "pk",
    "videos.Membership": "team",
    "videos.Invitation": "team",
    "videos.Project": "team",
    "videos.Prompt": "project__team",
    "videos.PromptVersion": "prompt__project__team",
    "videos.GenerationJob": "team",
    "videos.Batch": "team",
    "videos.WebhookEndpoint": "project__team",
    "videos.WebhookDelivery": "endpoint__project__team",
    "videos.JobEvent": "job__team",
    "videos.Asset": "job__team",
    "billing.Budget": "project__team",
    "billing.LedgerEntry": "project__team",
}


def team_path(model: type[models.Model]) -> str | None:
    return TEAM_PATHS.get(model._meta.label)


def team_roles(request: HttpRequest) -> dict[int, str]:
    """The request user's role in each of their teams, read once a request."""
    roles = getattr(request, "_team_roles", None)
    if roles is None:
        user = request.user
        roles = selectors.team_roles(user=user) if user.is_authenticated else {}
        request._team_roles = roles  # type: ignore[attr-defined]
    return roles


def is_superuser(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_superuser)


def _allows(role: str | None, needed: str | None) -> bool:
    return needed in Role.values and selectors.role_allows(role, needed)


def may(request: HttpRequest, needed: str | None, team_id: int | None = None) -> bool:
    """Whether the request's user has the right `needed` (a role, `SUPERUSERS` or None): in the
    team `team_id`, or in at least one of their teams when it is None."""
    user = request.user
    if needed is None or not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    roles = team_roles(request)
    if team_id is None:
        return any(_allows(role, needed) for role in roles.values())
    return _allows(roles.get(team_id), needed)


def team_ids(request: HttpRequest, needed: str | None = Role.VIEWER) -> list[int]:
    """The user's teams in which they have the right `needed`."""
    return [team for team, role in team_roles(request).items() if _allows(role, needed)]


def scope(
    queryset: QuerySet[Any], request: HttpRequest, needed: str | None = Role.VIEWER
) -> QuerySet[Any]:
    """`queryset` narrowed to the teams in which the request's user has the right `needed`.

    Superusers keep it whole; rows of a model that belongs to no team are theirs alone.
    """
    if needed is not None and is_superuser(request):
        return queryset
    path = team_path(queryset.model)
    if path is None or needed is None:
        return queryset.none()
    return queryset.filter(**{f"{path}__in": team_ids(request, needed)})


def team_id_of(obj: models.Model) -> int | None:
    """The id of the team `obj` belongs to (following `TEAM_PATHS`)."""
    path = team_path(type(obj))
    if path is None:
        return None
    if path == "pk":
        return obj.pk
    *through, last = path.split("__")
    for name in through:
        obj = getattr(obj, name)
    return getattr(obj, f"{last}_id")


def team_action(*, right: str, description: str) -> Callable[[Callable[..., Any]], Any]:
    """An admin action for members with the role `right`: offered to those who have it in one
    of their teams, and applied only to the selected rows of the teams where they have it (see
    `TeamScopedAdmin.get_actions`)."""

    def decorate(func: Callable[..., Any]) -> Any:
        func = admin.action(description=description, permissions=[str(right)])(func)
        func.team_right = right  # type: ignore[attr-defined]
        return func

    return decorate


def autocomplete_source(request: HttpRequest, site: Any) -> tuple[Any, Field] | None:
    """For a request to the admin's autocomplete view: the team-scoped admin whose form field
    asks, and that field; None for any other request."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name != "autocomplete":
        return None
    try:
        model = apps.get_model(request.GET["app_label"], request.GET["model_name"])
        field = model._meta.get_field(request.GET["field_name"])
    except (KeyError, LookupError, FieldDoesNotExist):
        return None  # the view itself refuses such a request
    source_admin = site._registry.get(model)
    if not isinstance(source_admin, TeamScopedAdmin):
        return None
    return source_admin, field


class TeamScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A filter by a related object that lists only the user's teams' objects."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[Any]:
        related = field.remote_field.model._default_manager.all()
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            related = related.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in scope(related, request)]

    def has_output(self) -> bool:
        # Django hides (and so skips) a filter with one choice; one that is asked for must
        # still apply, or filtering by another team's object would list everything.
        return super().has_output() or bool(self.used_parameters)


class TeamScopedAdmin:
    """Mix into a ModelAdmin (first among its bases) whose model is in `TEAM_PATHS`.

    Rights are roles (`Role.VIEWER`, `Role.EDITOR`, `Role.OWNER`), `SUPERUSERS`, or None for
    nobody. Choices of a form's foreign keys are the rows of the teams where the user may write
    what the form writes (`choice_right`).
    """

    view_right: str | None = Role.VIEWER
    add_right: str | None = None
    change_right: str | None = None
    delete_right: str | None = None

    admin_site: Any
    model: type[models.Model]

    # --- Rows --------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope(super().get_queryset(request), request, self.view_right)  # type: ignore[misc]

    def choice_right(self, request: HttpRequest, db_field: Field) -> str | None:
        return self.add_right or self.change_right or self.view_right

    def get_field_queryset(self, db: str | None, db_field: Field, request: HttpRequest) -> Any:
        queryset = super().get_field_queryset(db, db_field, request)  # type: ignore[misc]
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.using(db).all()  # type: ignore[union-attr]  # a relation field has one
        return scope(queryset, request, self.choice_right(request, db_field))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        found, may_have_duplicates = super().get_search_results(  # type: ignore[misc]
            request, queryset, search_term
        )
        source = autocomplete_source(request, self.admin_site)
        if source is not None:
            # An autocomplete widget offers what its form would accept: the rows of the teams
            # where the user may write what that form writes, not all they may read.
            source_admin, field = source
            found = scope(found, request, source_admin.choice_right(request, field))
        return found, may_have_duplicates

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        narrowed = []
        for item in super().get_list_filter(request):  # type: ignore[misc]
            if isinstance(item, str) and get_fields_from_path(self.model, item)[-1].is_relation:
                item = (item, TeamScopedRelatedFilter)
            narrowed.append(item)
        return narrowed

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        for name, (func, action_name, description) in list(actions.items()):
            right = getattr(func, "team_right", None)
            if right is not None:
                actions[name] = (self._narrowed(func, right), action_name, description)
        return actions

    @staticmethod
    def _narrowed(func: Callable[..., Any], right: str) -> Callable[..., Any]:
        @functools.wraps(func)
        def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
            return func(modeladmin, request, scope(queryset, request, right))

        return action

    # --- Rights ------------------------------------------------------------------------------

    def _may(self, request: HttpRequest, right: str | None, obj: Any) -> bool:
        return may(request, right, team_id_of(obj) if obj is not None else None)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may(request, self.view_right)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.view_right, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return may(request, self.add_right)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.change_right, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, self.delete_right, obj)

    # For `team_action(right=...)`: whether the user has the role in at least one team.
    def has_viewer_permission(self, request: HttpRequest) -> bool:
        return may(request, Role.VIEWER)

    def has_editor_permission(self, request: HttpRequest) -> bool:
        return may(request, Role.EDITOR)

    def has_owner_permission(self, request: HttpRequest) -> bool:
        return may(request, Role.OWNER)


class TeamScopedInline(TeamScopedAdmin):
    """Mix into an inline: its rows are scoped like any admin's, and its rights are the user's
    role in the team of the object the page shows."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # `obj` is the page's object, of the parent model (None on an add page).
        return self._may(request, self.add_right, obj)


class SuperusersOnly:
    """Mix into a ModelAdmin of something that belongs to no team: superusers only."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # No rows for anyone else: Django's history page looks an object up before it checks
        # rights, so a row that exists would answer "forbidden" where a missing one answers
        # "doesn't exist", telling staff which teams, users and tokens exist.
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return queryset if is_superuser(request) else queryset.none()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return is_superuser(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_delete_permission(request, obj)  # type: ignore[misc]
