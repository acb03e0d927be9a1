"""Projects and their budgets."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html

from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.forms import monthly_cap_field, warning_threshold_field
from videos import services
from videos.admin.base import ServiceAdmin, ServiceForm, adopt, usd
from videos.admin_scope import (
    TeamScopedAdmin,
    may,
    team_roles,
)
from videos.models import (
    Project,
    Role,
)
from videos.selectors import WHAT_ROLES_MAY

BUDGET_FIELDS = ("monthly_cap_usd", "warning_threshold")


class ProjectSettingsForm(ServiceForm):
    """A project's settings, which `services.project_create` / `project_update` write."""

    class Meta:
        model = Project
        fields = ["team", *services.PROJECT_FIELDS]


class ProjectForm(ProjectSettingsForm):
    """A project's settings and its monthly budget, which `billing.services.budget_set` writes
    (for the team's owners: editors get `ProjectSettingsForm`, without the budget)."""

    monthly_cap_usd = monthly_cap_field(
        label="Monthly budget (USD)",
        help_text="Blank: no cap. Jobs that would pass the cap wait in the queue.",
    )
    warning_threshold = warning_threshold_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        budget = self.instance.pk and billing_selectors.budget_get(project=self.instance)
        if budget:
            self.initial.setdefault("monthly_cap_usd", budget.monthly_cap_usd)
            self.initial.setdefault("warning_threshold", budget.warning_threshold)


class ProjectChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # One query for the page's money, whatever its length.
        money = billing_selectors.projects_money(self.result_list)
        for project in self.result_list:  # the page's rows, kept by the queryset's cache
            project.money = money[project.pk]


@admin.register(Project)
class ProjectAdmin(TeamScopedAdmin, ServiceAdmin):
    """Editors create and change projects; owners also set their budgets and delete them.
    This month's spend is on the list and on each project's page."""

    form = ProjectForm
    list_display = [
        "name",
        "team",
        "charged",
        "reserved",
        "left",
        "default_duration",
        "default_aspect_ratio",
        "default_sound",
        "provider",
    ]
    list_filter = ["team", "provider"]
    search_fields = ["name", "description"]
    list_select_related = ["team"]
    add_right = change_right = Role.EDITOR
    delete_right = Role.OWNER

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ProjectChangeList

    @admin.display(description="charged this month")
    def charged(self, project: Project) -> str:
        return usd(cast(Any, project).money.spent_usd)

    @admin.display(description="reserved")
    def reserved(self, project: Project) -> str:
        money = cast(Any, project).money  # set by the changelist, one query for the page
        if money.pending_usd:
            return f"{usd(money.reserved_usd)} (+{usd(money.pending_usd)} queued)"
        return usd(money.reserved_usd)

    @admin.display(description="left")
    def left(self, project: Project) -> str:
        money = cast(Any, project).money  # set by the changelist, one query for the page
        if money.cap_usd is None:
            return "no cap"
        text = f"{usd(money.remaining_usd)} of {usd(money.cap_usd)}"
        if money.over_warning:
            return format_html('<strong style="color:#b45309">{}</strong>', text)
        return text

    @admin.display(description="spend this month")
    def spend_this_month(self, project: Project) -> str:
        money = billing_selectors.project_money(project)
        parts = [
            f"charged {usd(money.spent_usd)}",
            f"reserved {usd(money.reserved_usd)}",
            f"queued {usd(money.pending_usd)}",
        ]
        if money.cap_usd is None:
            parts.append("no cap")
        else:
            parts.append(f"{usd(money.remaining_usd)} left of {usd(money.cap_usd)}")
        return f"{money.month:%B %Y}: " + "; ".join(parts)

    @admin.display(description="monthly budget")
    def budget_summary(self, project: Project) -> str:
        budget = billing_selectors.budget_get(project=project)
        if budget is None:
            return "No cap. Owners of the team set the budget."
        return (
            f"{usd(budget.monthly_cap_usd)} a month, warning at "
            f"{budget.warning_threshold:.0%}. Owners of the team set the budget."
        )

    def may_set_budget(self, request: HttpRequest, obj: Project | None) -> bool:
        return may(request, Role.OWNER, obj.team_id if obj is not None else None)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if not self.may_set_budget(request, obj):
            kwargs["form"] = ProjectSettingsForm  # no budget fields at all: nothing to post
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        budget = list(BUDGET_FIELDS) if self.may_set_budget(request, obj) else ["budget_summary"]
        fieldsets: list[Any] = [
            (None, {"fields": ["team", "name", "description", "provider"]}),
            (
                "Job defaults",
                {
                    "fields": [
                        "default_duration",
                        "default_aspect_ratio",
                        "default_sound",
                    ]
                },
            ),
            ("Budget", {"fields": budget}),
        ]
        if obj is not None:
            fieldsets.append(("This month", {"fields": ["spend_this_month"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Its jobs and money belong to the team.
        readonly = ["budget_summary"]
        return ["team", *readonly, "spend_this_month"] if obj is not None else readonly

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {f: data[f] for f in services.PROJECT_FIELDS if f in form.changed_data}
            if changes:
                services.project_update(project=obj, **changes)
        else:
            saved = services.project_create(
                team=data["team"], **{f: data[f] for f in services.PROJECT_FIELDS}
            )
            adopt(obj, saved)
        if set(BUDGET_FIELDS) & set(form.changed_data):
            role = team_roles(request).get(obj.team_id)
            if not may(request, Role.OWNER, obj.team_id):
                raise ValidationError(
                    {"monthly_cap_usd": WHAT_ROLES_MAY[Role.OWNER].format(role=role)}
                )
            billing_services.budget_set(
                project=obj,
                monthly_cap_usd=data["monthly_cap_usd"],
                warning_threshold=data["warning_threshold"],
            )

    def delete_check(self, obj: Project) -> None:
        services.project_delete_check(project=obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # What cascades with a project (its budget) goes in project_delete; it needs no
        # permission of its own admin (the Budget admin only shows).
        perms_needed.difference_update(
            str(relation.related_model._meta.verbose_name)
            for relation in Project._meta.related_objects
            if relation.on_delete is models.CASCADE
        )
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Project) -> None:
        services.project_delete(project=obj)
