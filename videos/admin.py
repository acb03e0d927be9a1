"""The editors' workbench. Like the API, it writes teams, members, projects and prompts only
through `videos.services` (see `ServiceAdmin`), budgets through `billing.services` and jobs
through `videos.jobs`, so each rule is written once and a refusal reads the same through every
door. Every admin class here is team-scoped (`videos.admin_scope`): a staff user sees and
changes only their teams' rows, with the rights their role gives; superusers see everything.
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from billing import selectors as billing_selectors
from billing import services as billing_services
from videos import selectors, services
from videos.admin_scope import (
    SUPERUSERS,
    SuperusersOnly,
    TeamScopedAdmin,
    TeamScopedInline,
    may,
    team_action,
    team_roles,
)
from videos.admin_site import confirmation_page, confirmed
from videos.api.permissions import WHAT_ROLES_MAY
from videos.jobs import (
    BudgetExceeded,
    CreditsShort,
    balance_check,
    budget_check,
    credits_check,
    job_adopt_task,
    job_cancel,
    job_confirm_not_accepted,
    job_give_up,
    job_inputs,
    job_prepare,
    job_retrieval_retry,
    job_retry,
    jobs_queue,
    submissions_resume,
)
from videos.models import (
    AspectRatio,
    Asset,
    Duration,
    GenerationJob,
    Invitation,
    InvitationStatus,
    JobEvent,
    JobState,
    Kind,
    Membership,
    Project,
    Prompt,
    PromptVersion,
    ProviderAccount,
    Role,
    Team,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# --- Writing through the services ------------------------------------------------------------

# What a service raises when it refuses: bad input, or a request that contradicts what exists.
REFUSALS = (ValidationError, services.Conflict)


def acting_user(request: HttpRequest) -> User:
    """Who is acting: the admin site serves only logged-in staff, never an anonymous user."""
    return cast("User", request.user)


def refusal_errors(exc: Exception) -> dict[str | None, list[str]]:
    """A service's refusal as form errors: field -> messages; None for the form as a whole."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return {field: list(errors) for field, errors in exc.message_dict.items()}
        return {None: exc.messages}
    return {None: [str(exc)]}


def refusal_text(exc: Exception) -> str:
    return " ".join(message for errors in refusal_errors(exc).values() for message in errors)


def adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's own object the row a service saved, so that the log entry, the
    message and the redirect after a save name that row."""
    obj.__dict__.update(saved.__dict__)


class ServiceForm(forms.ModelForm):
    """An admin form that only parses input; the service checks and writes it.

    The model's own validation is skipped: it would check the service's rules (unique names,
    slugs, one membership a user) a second time and in other words. `refusal` holds what the
    service refused when the same input was saved a moment ago, shown as this form's errors.
    """

    refusal: ClassVar[dict[str | None, list[str]]] = {}

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        for field, errors in self.refusal.items():
            self.add_error(field if field in self.fields else None, errors)
        return cleaned

    def _post_clean(self) -> None:
        pass


class ServiceAdmin(admin.ModelAdmin):
    """A model admin whose writes are service calls, made in `save_model`, `save_formset` and
    `delete_model` (which refuse to fall back to the ORM).

    When a service refuses (`ValidationError`, `Conflict`), everything the request wrote is
    rolled back and the form comes back with the refusal as its errors, filled in as sent. A
    refused delete is an error message; a bulk action is all or nothing.
    """

    form = ServiceForm

    def delete_check(self, obj: Any) -> None:
        """Raise the service's refusal to delete `obj` before anyone is asked to confirm."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except REFUSALS as exc:
            # The refused save was rolled back with the rest of the request's writes. The same
            # POST is handled again, now failing validation with the refusal: the page shows
            # the form as it was filled in, with the service's words.
            request.admin_refusal = refusal_errors(exc)  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "admin_refusal", None)
        if refusal:
            # A ServiceForm subclass made for this request by modelform_factory.
            form.refusal = refusal  # type: ignore[attr-defined]
        return form

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        return form.instance  # unchanged: save_model hands the cleaned data to a service

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        raise NotImplementedError(f"{type(self).__name__} saves through a service")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Read-only inlines (history) write nothing; the change message still reads these.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} deletes through a service")

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        # One at a time, each judged by the service; response_action undoes all on a refusal.
        for obj in queryset:
            self.delete_model(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        for obj in objs:
            self.delete_check(obj)
        return super().get_deleted_objects(objs, request)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except REFUSALS as exc:
            self.message_user(request, refusal_text(exc), messages.ERROR)
            opts = self.opts
            return HttpResponseRedirect(
                reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change",
                    args=[object_id],
                    current_app=self.admin_site.name,
                )
            )

    # Django 5.2's signature; the stubs (written for Django 6.1) add `action_location`.
    def response_action(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:  # type: ignore[override]
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                return super().response_action(request, queryset)
        except REFUSALS as exc:
            self.message_user(request, refusal_text(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


# --- Teams and members -----------------------------------------------------------------------


class MembershipInlineForm(ServiceForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "user" in self.fields:
            # Giving a membership to someone else would be a removal and an addition.
            self.fields["user"].disabled = True


class MembershipInline(TeamScopedInline, admin.TabularInline):
    """A team's members on its page (superusers'; staff see members in the Membership list)."""

    model = Membership
    form = MembershipInlineForm
    extra = 0
    autocomplete_fields = ["user"]
    add_right = change_right = delete_right = SUPERUSERS


def save_member_rows(*, team: Team, formset: Any) -> None:
    """Apply the team page's member rows through the membership services.

    Additions and promotions to owner go first, demotions and removals last, so ownership can
    be handed over in one save; a save that would still leave the team without an owner is
    refused (`LastOwner`) and undone as a whole.
    """
    deleted_forms = formset.deleted_forms
    rows = [row for row in formset.forms if row.has_changed() and row not in deleted_forms]
    deleted = [row for row in deleted_forms if row.instance.pk is not None]
    added = [row for row in rows if row.instance.pk is None]
    recast = sorted(
        (row for row in rows if row.instance.pk is not None and "role" in row.changed_data),
        key=lambda row: row.cleaned_data["role"] != Role.OWNER,
    )
    formset.new_objects = [
        services.membership_add_user(
            team=team, user=row.cleaned_data["user"], role=row.cleaned_data["role"]
        )
        for row in added
    ]
    formset.changed_objects = []
    for row in recast:
        role = row.cleaned_data["role"]
        membership = services.membership_set_role(membership=row.instance, role=role)
        formset.changed_objects.append((membership, ["role"]))
    for row in deleted:
        services.membership_remove(membership=row.instance)
    formset.deleted_objects = [row.instance for row in deleted]


@admin.register(Team)
class TeamAdmin(SuperusersOnly, ServiceAdmin):
    """Teams are made and renamed by superusers; members join them by invitation."""

    list_display = ["name", "slug", "personal_for", "created"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["personal_for"]
    inlines = [MembershipInline]

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.team_update(team=obj, name=data["name"], slug=data["slug"])
        else:
            adopt(obj, services.team_create(name=data["name"], slug=data["slug"]))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Membership:
            save_member_rows(team=form.instance, formset=formset)
        else:
            super().save_formset(request, form, formset, change)

    def delete_check(self, obj: Team) -> None:
        services.team_delete_check(team=obj)

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        services.team_delete(team=obj)


@admin.register(Membership)
class MembershipAdmin(TeamScopedAdmin, ServiceAdmin):
    """Members read their teams' members; owners remove members (people join by invitation);
    superusers also add members and change roles directly."""

    list_display = ["user", "team", "role", "created"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]
    list_select_related = ["user", "team"]
    add_right = change_right = SUPERUSERS
    delete_right = Role.OWNER

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Moving a membership to another user or team would be a removal and an addition.
        return ["user", "team"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            saved = services.membership_add_user(
                team=data["team"], user=data["user"], role=data["role"]
            )
            adopt(obj, saved)
        elif "role" in form.changed_data:
            services.membership_set_role(membership=obj, role=data["role"])

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(membership=obj)


class InvitationForm(ServiceForm):
    class Meta:
        model = Invitation
        fields = ["team", "username", "email", "role"]
        help_texts = {
            "username": "Name the person by username or by email, not both.",
            "email": "They join only by accepting it (API: POST /api/v1/invitations/<id>/accept/); "
            "it expires after 7 days.",
        }


@admin.register(Invitation)
class InvitationAdmin(TeamScopedAdmin, ServiceAdmin):
    """Owners invite people to their teams (`services.invitation_create`) and revoke pending
    invitations; nobody edits one."""

    form = InvitationForm
    list_display = ["invitee", "team", "role", "status", "invited_by", "created", "expires_at"]
    list_filter = ["status", "role", "team"]
    search_fields = ["username", "email"]
    list_select_related = ["team", "invited_by"]
    view_right = add_right = Role.OWNER
    actions = ["revoke_invitations"]

    @admin.display(description="invitee")
    def invitee(self, invitation: Invitation) -> str:
        return invitation.username or invitation.email

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        data = form.cleaned_data
        saved = services.invitation_create(
            team=data["team"],
            role=data["role"],
            by=acting_user(request),
            username=data.get("username") or "",
            email=data.get("email") or "",
        )
        adopt(obj, saved)

    @team_action(right=Role.OWNER, description="Revoke selected pending invitations")
    def revoke_invitations(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        invitations = list(queryset.select_related("team"))
        pending = [i for i in invitations if i.status == InvitationStatus.PENDING]
        if not confirmed(request):
            return confirmation_page(
                self,
                request,
                action="revoke_invitations",
                title="Revoke invitations",
                rows=[
                    (
                        i,
                        "Revoked: it can no longer be accepted."
                        if i in pending
                        else f"Nothing: it was {i.status} already.",
                    )
                    for i in invitations
                ],
                question=f"Revoke {len(pending)} of {len(invitations)} invitations?",
                button="Yes, revoke them",
            )
        for invitation in pending:
            services.invitation_revoke(invitation=invitation, by=acting_user(request))
        self.message_user(request, f"Revoked {len(pending)} of {len(invitations)} invitations.")
        return None


# --- Projects and budgets --------------------------------------------------------------------


BUDGET_FIELDS = ("monthly_cap_usd", "warning_threshold")


def usd(amount: Decimal | None) -> str:
    return "no cap" if amount is None else f"${amount.quantize(Decimal('0.01'))}"


class ProjectSettingsForm(ServiceForm):
    """A project's settings, which `services.project_create` / `project_update` write."""

    class Meta:
        model = Project
        fields = ["team", *services.PROJECT_FIELDS]


class ProjectForm(ProjectSettingsForm):
    """A project's settings and its monthly budget, which `billing.services.budget_set` writes
    (for the team's owners: editors get `ProjectSettingsForm`, without the budget)."""

    monthly_cap_usd = forms.DecimalField(
        label="Monthly budget (USD)",
        max_digits=12,
        decimal_places=4,
        required=False,
        help_text="Blank: no cap. Jobs that would pass the cap wait in the queue.",
    )
    warning_threshold = forms.DecimalField(
        max_digits=3,
        decimal_places=2,
        required=False,
        initial=billing_services.WARNING_THRESHOLD_DEFAULT,
        help_text=billing_services.WARNING_THRESHOLD_HELP,
    )

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
    ]
    list_filter = ["team"]
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
            (None, {"fields": ["team", "name", "description"]}),
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


# --- Prompts ---------------------------------------------------------------------------------


class PromptTextField(forms.CharField):
    """Prompt text as typed: blank and too long are the service's to refuse, in its words."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(widget=forms.Textarea, required=False, strip=False, **kwargs)

    def to_python(self, value: Any) -> str:
        # Browsers send a textarea's line breaks as CRLF: text nobody touched must still equal
        # the stored version, or every save would add one.
        return cast(str, super().to_python(value)).replace("\r\n", "\n")  # empty_value is ""


class PromptForm(ServiceForm):
    text = PromptTextField(
        help_text="Changed text is saved as a new version; the earlier ones stay, as jobs "
        "refer to them."
    )

    class Meta:
        model = Prompt
        fields = ["project", "title", "text"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            current = self.instance.current_version
            self.initial.setdefault("text", current.text if current else "")


WORDS = re.compile(r"\s+|\S+")
# Unchanged text longer than this is shortened around the changes.
CONTEXT_CHARACTERS = 40


def _shortened(text: str, *, keep_start: bool, keep_end: bool) -> str:
    if len(text) <= 2 * CONTEXT_CHARACTERS:
        return text
    head = text[:CONTEXT_CHARACTERS] if keep_start else ""
    tail = text[-CONTEXT_CHARACTERS:] if keep_end else ""
    return f"{head} … {tail}".strip()


def text_diff(before: str, after: str) -> SafeString:
    """What changed from `before` to `after`, word by word: removed words struck through,
    added ones underlined, long unchanged stretches shortened."""
    old, new = WORDS.findall(before), WORDS.findall(after)
    pieces = []
    opcodes = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    for index, (op, a0, a1, b0, b1) in enumerate(opcodes):
        if op == "equal":
            text = _shortened(
                "".join(old[a0:a1]), keep_start=index > 0, keep_end=index < len(opcodes) - 1
            )
            pieces.append(format_html("<span>{}</span>", text))
            continue
        if a1 > a0:
            pieces.append(format_html("<del>{}</del>", "".join(old[a0:a1])))
        if b1 > b0:
            pieces.append(format_html("<ins>{}</ins>", "".join(new[b0:b1])))
    return mark_safe("".join(pieces))  # every piece was escaped by format_html


class PromptVersionInline(TeamScopedInline, admin.TabularInline):
    """A prompt's versions, newest first, each with what it changed."""

    model = PromptVersion
    extra = 0
    fields = ("number", "changes", "created_by", "created")
    readonly_fields = fields
    ordering = ["-number"]

    def get_queryset(self, request: HttpRequest) -> Any:
        previous = PromptVersion.objects.filter(
            prompt=OuterRef("prompt"), number=OuterRef("number") - 1
        )
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(previous_text=Subquery(previous.values("text")[:1]))
        )

    @admin.display(description="what changed")
    def changes(self, version: PromptVersion) -> SafeString:
        previous = getattr(version, "previous_text", None)
        if previous is None:
            return format_html("<span>{}</span> <em>(first version)</em>", version.text)
        return text_diff(previous, version.text)


class GenerateClipsForm(forms.Form):
    """The choices "Generate clips" applies to every selected prompt; blank: the project's."""

    duration = forms.TypedChoiceField(
        choices=[("", "Project default"), *Duration.choices],
        coerce=int,
        empty_value=None,
        required=False,
    )
    aspect_ratio = forms.ChoiceField(
        choices=[("", "Project default"), *AspectRatio.choices], required=False
    )
    sound = forms.TypedChoiceField(
        choices=[("", "Project default"), ("yes", "With sound"), ("no", "Silent")],
        coerce=lambda value: value == "yes",
        empty_value=None,
        required=False,
    )


def clip_plan(prompts: list[Prompt], options: dict[str, Any]) -> dict[str, Any]:
    """What generating a clip from each prompt would queue and cost, judged as `jobs_queue`
    will judge it: each prompt's job prepared (`job_prepare`), each project's total against its
    remaining budget (`budget_check`) and all of it against the provider balance
    (`balance_check`). Saves nothing."""
    specs, rows = [], []
    chosen = {name: value for name, value in options.items() if value not in (None, "")}
    for prompt in prompts:
        version = prompt.current_version
        try:
            spec = job_prepare(
                project=prompt.project, kind=Kind.TEXT_TO_VIDEO, prompt_version=version, **chosen
            )
        except ValidationError as exc:
            rows.append({"prompt": prompt, "version": version, "error": " ".join(exc.messages)})
            continue
        specs.append(spec)
        rows.append({"prompt": prompt, "version": version, "spec": cast(Any, spec)})
    by_project: dict[int, list[Any]] = {}
    for spec in specs:
        by_project.setdefault(spec.project.pk, []).append(spec)
    money = billing_selectors.projects_money([own[0].project for own in by_project.values()])
    projects = []
    for project_id, own in by_project.items():
        total = sum((spec.estimated_cost_usd for spec in own), Decimal("0"))
        refusal = ""
        try:
            budget_check(own[0].project, total, jobs=len(own))
        except BudgetExceeded as exc:
            refusal = str(exc)
        projects.append(
            {
                "project": own[0].project,
                "clips": len(own),
                "total_usd": total,
                "money": money[project_id],
                "left_usd": usd(money[project_id].remaining_usd),
                "left_after_usd": usd(
                    None if (left := money[project_id].remaining_usd) is None else left - total
                ),
                "refusal": refusal,
            }
        )
    balance = balance_check(specs)
    total = sum((spec.estimated_cost_usd for spec in specs), Decimal("0"))
    return {
        "specs": specs,
        "rows": rows,
        "projects": projects,
        "balance": balance,
        "total_usd": total,
        "ready": len(specs) == len(rows) > 0
        and balance.covers
        and not any(row["refusal"] for row in projects),
    }


@admin.register(Prompt)
class PromptAdmin(TeamScopedAdmin, ServiceAdmin):
    """Editors write prompts here (every change of text is a new version, listed with what it
    changed) and generate clips from them."""

    form = PromptForm
    list_display = ["title", "project", "version", "updated"]
    list_filter = ["project__team", "project"]
    search_fields = ["title", "versions__text"]
    list_select_related = ["project"]
    inlines = [PromptVersionInline]
    actions = ["generate_clips"]
    add_right = change_right = Role.EDITOR  # and never deleted: its versions are kept forever

    def get_queryset(self, request: HttpRequest) -> Any:
        current = PromptVersion.objects.filter(prompt=OuterRef("pk")).order_by("-number")
        return (
            super()
            .get_queryset(request)
            .annotate(current_number=Subquery(current.values("number")[:1]))
        )

    @admin.display(description="version", ordering="current_number")
    def version(self, prompt: Prompt) -> Any:
        return cast(Any, prompt).current_number  # annotated by the queryset

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["project"] if obj is not None else []  # its versions belong to the project's jobs

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Prompt, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = services.prompt_update(
                prompt=obj, by=acting_user(request), title=data["title"], text=data["text"]
            )
        else:
            saved = services.prompt_create(
                project=data["project"],
                title=data["title"],
                text=data["text"],
                by=acting_user(request),
            )
        adopt(obj, saved)

    @team_action(right=Role.EDITOR, description="Generate clips from selected prompts")
    def generate_clips(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """An intermediate page: choose duration, aspect ratio and sound, see the estimate
        against each project's budget and the provider balance, then queue."""
        prompts = list(queryset.select_related("project", "project__team").order_by("pk"))
        form = GenerateClipsForm(request.POST if "options" in request.POST else None)
        options = form.cleaned_data if form.is_valid() else {}
        plan = clip_plan(prompts, options)
        problem = ""
        if confirmed(request) and form.is_bound and form.is_valid() and plan["ready"]:
            try:
                with transaction.atomic():
                    queued = jobs_queue(plan["specs"], by=acting_user(request))
            except (BudgetExceeded, CreditsShort) as exc:  # money moved since the estimate
                problem = str(exc)
            else:
                self.message_user(
                    request,
                    f"Queued {len(queued)} clips (estimated {usd(plan['total_usd'])}).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:videos_generationjob_changelist"))
        return confirmation_page(
            self,
            request,
            action="generate_clips",
            title="Generate clips",
            rows=[],
            question=f"Queue {len(plan['specs'])} clips for an estimated {usd(plan['total_usd'])}?",
            button=f"Yes, queue {len(plan['specs'])} clips",
            form=form,
            template="admin/reelforge/generate_clips.html",
            plan=plan,
            problem=problem,
        )


@admin.register(PromptVersion)
class PromptVersionAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ["prompt", "number", "created_by", "created"]
    list_filter = ["prompt__project"]
    search_fields = ["text", "prompt__title"]
    list_select_related = ["prompt", "created_by"]


# --- Jobs ------------------------------------------------------------------------------------


class JobEventInline(TeamScopedInline, admin.TabularInline):
    model = JobEvent
    extra = 0
    fields = ("created", "from_state", "to_state", "reason")
    readonly_fields = fields


class GenerationJobCreateForm(forms.ModelForm):
    """The admin's "add job" form: its fields are `job_prepare`'s, which judges them as it does
    for every other door."""

    prompt = forms.CharField(
        widget=forms.Textarea, required=False, strip=False, help_text="Or choose a prompt version."
    )
    image = forms.FileField(required=False, help_text="JPEG, PNG or WebP, at most 10 MB.")
    image_url = forms.URLField(required=False, max_length=2000, assume_scheme="https")

    class Meta:
        model = GenerationJob
        fields = ["project", "kind", "prompt_version", "duration", "aspect_ratio", "sound"]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.spec = job_prepare(**job_inputs(self.cleaned_data))
            budget_check(self.spec.project, self.spec.estimated_cost_usd)
            credits_check([self.spec])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        except (BudgetExceeded, CreditsShort) as exc:
            self.add_error(None, str(exc))
        return cleaned

    def _post_clean(self) -> None:
        # The pipeline builds the job; the model's own validation would run before it exists.
        pass


# A job's state as a badge: (background, text) colours.
BADGE_COLOURS = {
    JobState.QUEUED: ("#e5e7eb", "#374151"),
    JobState.SUBMITTING: ("#dbeafe", "#1e40af"),
    JobState.SUBMITTED: ("#dbeafe", "#1e40af"),
    JobState.GENERATING: ("#dbeafe", "#1e40af"),
    JobState.RETRIEVING: ("#e0e7ff", "#3730a3"),
    JobState.SUCCEEDED: ("#dcfce7", "#166534"),
    JobState.FAILED: ("#fee2e2", "#991b1b"),
    JobState.CANCELED: ("#f3f4f6", "#4b5563"),
    JobState.NEEDS_ATTENTION: ("#ffedd5", "#9a3412"),
}


def state_badge(job: GenerationJob) -> SafeString:
    background, colour = BADGE_COLOURS.get(JobState(job.state), ("#e5e7eb", "#374151"))
    return format_html(
        '<span class="job-state job-state-{}" title="{}" style="background:{};color:{};'
        'padding:2px 8px;border-radius:10px;font-weight:600;white-space:nowrap">{}</span>',
        job.state,
        job.state_reason,
        background,
        colour,
        job.get_state_display(),
    )


class ProviderErrorCodeFilter(admin.SimpleListFilter):
    """The provider's (or the platform's) error codes found among the user's jobs."""

    title = "provider error code"
    parameter_name = "error_code"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = (
            model_admin.get_queryset(request)
            .exclude(provider_error_code="")
            .order_by("provider_error_code")
            .values_list("provider_error_code", flat=True)
            .distinct()
        )
        return [(code, code) for code in codes]

    def has_output(self) -> bool:
        # Shown (and so applied) also when the user's jobs have no such code: then none match.
        return bool(self.lookup_choices) or self.value() is not None

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(provider_error_code=self.value()) if self.value() else queryset


def short(job: GenerationJob) -> str:
    return str(job.pk)[:8]


@admin.register(GenerationJob)
class GenerationJobAdmin(TeamScopedAdmin, admin.ModelAdmin):
    """Editors queue jobs, cancel and retry them, and resolve what the pipeline could not
    decide alone; every change goes through `videos.jobs`. Nobody edits a job by hand."""

    list_display = [
        "short_id",
        "badge",
        "project",
        "kind",
        "duration",
        "sound",
        "list_cost",
        "age",
        "poster",
    ]
    list_filter = [
        "state",
        "kind",
        "project__team",
        "project",
        "created",
        ProviderErrorCodeFilter,
        "duration",
        "sound",
    ]
    search_fields = ["prompt_text", "provider_task_id"]
    autocomplete_fields = ["prompt_version"]
    list_select_related = ["project", "asset"]
    date_hierarchy = "created"
    actions = [
        "cancel_jobs",
        "retry_jobs",
        "retry_retrieval",
        "resolve_needs_attention",
        "give_up_jobs",
    ]
    inlines = [JobEventInline]
    add_right = Role.EDITOR
    # Jobs change only through the pipeline; the callback token is a secret and never shown.
    readonly_fields = [
        "id",
        "state",
        "state_reason",
        "clip",
        "cost",
        "charge_discrepancy",
        "team",
        "project",
        "kind",
        "prompt_version",
        "prompt_text",
        "source_image",
        "source_image_url",
        "duration",
        "aspect_ratio",
        "sound",
        "estimated_cost_usd",
        "provider",
        "provider_task_id",
        "provider_error_code",
        "provider_error_message",
        "provider_credits",
        "result_url",
        "idempotency_key",
        "retry_of",
        "attempt",
        "canceled_by_user",
        "held_for",
        "submit_after",
        "submit_attempts",
        "next_poll_at",
        "poll_attempts",
        "submitted_at",
        "finished_at",
        "created_by",
        "created",
        "updated",
    ]

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super().get_queryset(request).annotate(cost_usd=billing_selectors.job_charge_subquery())
        )

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        job_id = selectors.uuid_or_none(search_term.strip())
        if job_id is not None:  # a job's own id, as the API and the logs print it
            found = found | queryset.filter(pk=job_id)
        return found, may_have_duplicates

    @admin.display(description="job", ordering="created")
    def short_id(self, job: GenerationJob) -> str:
        return short(job)

    @admin.display(description="state", ordering="state")
    def badge(self, job: GenerationJob) -> SafeString:
        return state_badge(job)

    @admin.display(description="cost")
    def list_cost(self, job: GenerationJob) -> str:
        charged = getattr(job, "cost_usd", None)
        if charged is not None:
            return f"${Decimal(charged).quantize(Decimal('0.01'))}"
        return f"~${job.estimated_cost_usd.quantize(Decimal('0.01'))}"

    @admin.display(description="age", ordering="-created")
    def age(self, job: GenerationJob) -> str:
        return f"{timesince(job.created, timezone.now()).split(',')[0]} ago"

    @admin.display(description="poster")
    def poster(self, job: GenerationJob) -> str:
        asset = getattr(job, "asset", None)
        if asset is None or not asset.poster:
            return "-"
        return format_html(
            '<img src="{}" alt="poster of job {}" style="height:40px;border-radius:3px">',
            asset.poster.url,
            short(job),
        )

    @admin.display(description="clip")
    def clip(self, job: GenerationJob) -> str:
        asset = Asset.objects.filter(job=job).first()
        if asset is None:
            return "-"
        return format_html(
            '<video src="{}" poster="{}" controls preload="metadata" width="480"></video><br>'
            "{} x {}, {} s, {} fps, {}, {} bytes, sha256 {}",
            asset.file.url,
            asset.poster.url if asset.poster else "",
            asset.width,
            asset.height,
            asset.duration_s,
            f"{asset.fps:.0f}",
            "with sound" if asset.has_audio else "silent",
            asset.size_bytes,
            asset.sha256,
        )

    @admin.display(description="cost")
    def cost(self, job: GenerationJob) -> str:
        totals = billing_selectors.job_ledger_total(job)
        return (
            f"estimated ${job.estimated_cost_usd}; charged ${totals['charge']}; "
            f"reserved ${totals['reserve']}, released ${totals['release']}"
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = GenerationJobCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A job's page shows everything, in this order; the add form is job_prepare's fields.
        return self.readonly_fields if obj is not None else super().get_fields(request, obj)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Not wrapped in one transaction, unlike Django's: the form resolves image URLs, which
        # must not hold the database's write lock, and the pipeline makes its own transactions.
        try:
            return self._changeform_view(request, *args, **kwargs)  # type: ignore[attr-defined]
        except (BudgetExceeded, CreditsShort) as exc:
            # Checked on the form; only a request racing this one gets here.
            self.message_user(request, str(exc), level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> GenerationJob:
        [job] = jobs_queue([form.spec], by=acting_user(request))
        return job

    def save_model(self, request: HttpRequest, obj: GenerationJob, form: Any, change: bool) -> None:
        pass  # saved by jobs_queue, in save_form

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        for account in ProviderAccount.objects.filter(paused_at__isnull=False):
            self.message_user(
                request,
                f"Submissions to {account.provider} are paused: {account.pause_reason} "
                "Resume them from Provider accounts once fixed.",
                level=messages.ERROR,
            )
        return super().changelist_view(request, extra_context)

    # --- Actions: each shows what it will do, job by job, and acts once confirmed ------------

    def _confirm(
        self,
        request: HttpRequest,
        jobs: list[GenerationJob],
        *,
        action: str,
        title: str,
        outcomes: list[str],
        question: str,
        button: str,
    ) -> TemplateResponse:
        return confirmation_page(
            self,
            request,
            action=action,
            title=title,
            rows=list(zip(jobs, outcomes, strict=False)),
            question=question,
            button=button,
        )

    @team_action(right=Role.EDITOR, description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        jobs = list(queryset)
        if not confirmed(request):
            outcomes = [
                f"Nothing: it has {job.get_state_display().lower()} already."
                if job.is_terminal
                else "Canceled; its reservation is released."
                if job.state == JobState.QUEUED
                else "Canceled; a clip that still arrives is kept and charged."
                for job in jobs
            ]
            return self._confirm(
                request,
                jobs,
                action="cancel_jobs",
                title="Cancel jobs",
                outcomes=outcomes,
                question=f"Cancel {sum(not job.is_terminal for job in jobs)} of {len(jobs)} jobs?",
                button="Yes, cancel them",
            )
        canceled = sum(job_cancel(job=job, by=acting_user(request)) for job in jobs)
        self.message_user(request, f"Canceled {canceled} of {len(jobs)} jobs.")
        return None

    @team_action(right=Role.EDITOR, description="Retry selected failed or canceled jobs")
    def retry_jobs(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        jobs = list(queryset.select_related("project"))
        retryable = [j for j in jobs if j.state in (JobState.FAILED, JobState.CANCELED)]
        if not confirmed(request):
            outcomes = [
                f"A new attempt, estimated ${job.estimated_cost_usd} against "
                f"{usd(billing_selectors.project_money(job.project).remaining_usd)} left."
                if job in retryable
                else f"Nothing: only failed or canceled jobs are retried, not "
                f"{job.get_state_display().lower()} ones."
                for job in jobs
            ]
            return self._confirm(
                request,
                jobs,
                action="retry_jobs",
                title="Retry jobs",
                outcomes=outcomes,
                question=f"Retry {len(retryable)} of {len(jobs)} jobs?",
                button="Yes, retry them",
            )
        for job in retryable:
            try:
                new = job_retry(job=job, by=acting_user(request))
            except (ValidationError, BudgetExceeded, CreditsShort) as exc:
                text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"Job {short(job)}: {text}", level=messages.WARNING)
            else:
                self.message_user(request, f"Job {short(job)} retried as {short(new)}.")
        return None

    @team_action(right=Role.EDITOR, description="Retry retrieval of selected stuck downloads")
    def retry_retrieval(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        jobs = list(queryset)
        stuck = [
            job
            for job in jobs
            if job.result_url and job.state in (JobState.NEEDS_ATTENTION, JobState.RETRIEVING)
        ]
        if not confirmed(request):
            outcomes = [
                "Its clip is downloaded again, with a new deadline."
                if job in stuck
                else "Nothing: it has no finished clip waiting to be stored."
                for job in jobs
            ]
            return self._confirm(
                request,
                jobs,
                action="retry_retrieval",
                title="Retry retrieval",
                outcomes=outcomes,
                question=f"Retrieve {len(stuck)} of {len(jobs)} clips again?",
                button="Yes, retrieve them again",
            )
        for job in stuck:
            try:
                retried = job_retrieval_retry(job=job, by=acting_user(request))
            except ValidationError as exc:
                self.message_user(
                    request, f"Job {short(job)}: {' '.join(exc.messages)}", level=messages.WARNING
                )
            else:
                note = "retrieving its clip again" if retried else "it changed meanwhile"
                self.message_user(request, f"Job {short(job)}: {note}.")
        return None

    @team_action(right=Role.EDITOR, description="Resolve selected jobs that need attention")
    def resolve_needs_attention(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """For a job the provider may or may not have: adopt the task id an operator found at
        the provider, or confirm that it never accepted the job (failed and released)."""
        jobs = list(queryset)
        unsure = [
            job
            for job in jobs
            if job.state == JobState.NEEDS_ATTENTION
            and not job.result_url
            and not job.provider_task_id
        ]
        if not confirmed(request):
            return confirmation_page(
                self,
                request,
                action="resolve_needs_attention",
                title="Resolve jobs that need attention",
                rows=[
                    (job, "" if job in unsure else "Nothing: the platform knows what became of it.")
                    for job in jobs
                ],
                question="Look each job up at the provider (by its callback URL, which carries "
                "the job's id), then decide.",
                button="Resolve as chosen",
                template="admin/reelforge/resolve_jobs.html",
                unsure=unsure,
            )
        resolved = 0
        for job in unsure:
            decision = request.POST.get(f"resolve-{job.pk}", "leave")
            try:
                if decision == "adopt":
                    task_id = request.POST.get(f"task-{job.pk}", "")
                    done = job_adopt_task(job=job, task_id=task_id, by=acting_user(request))
                elif decision == "not_accepted":
                    done = job_confirm_not_accepted(job=job, by=acting_user(request))
                else:
                    continue
            except ValidationError as exc:
                self.message_user(
                    request, f"Job {short(job)}: {' '.join(exc.messages)}", level=messages.ERROR
                )
                continue
            resolved += done
        self.message_user(
            request, f"Resolved {resolved} of {len(unsure)} jobs that need attention."
        )
        return None

    @team_action(
        right=Role.EDITOR, description="Mark selected jobs that need attention as failed (release)"
    )
    def give_up_jobs(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        jobs = list(queryset)
        if not confirmed(request):
            outcomes = [
                (
                    "Failed; its clip was reported, so it is charged."
                    if job.result_url
                    else "Failed; its reservation is released."
                )
                if job.state == JobState.NEEDS_ATTENTION
                else "Nothing: it does not need attention."
                for job in jobs
            ]
            return self._confirm(
                request,
                jobs,
                action="give_up_jobs",
                title="Mark jobs failed",
                outcomes=outcomes,
                question="A clip that still arrives later is stored and the job succeeds. Go on?",
                button="Yes, mark them failed",
            )
        done = sum(job_give_up(job=job, by=acting_user(request)) for job in jobs)
        self.message_user(request, f"Marked {done} of {len(jobs)} jobs failed.")
        return None


@admin.register(ProviderAccount)
class ProviderAccountAdmin(SuperusersOnly, admin.ModelAdmin):
    list_display = (
        "provider",
        "paused_at",
        "pause_code",
        "pause_reason",
        "credits_left",
        "credits_checked_at",
    )
    readonly_fields = list_display
    actions = ["resume_submissions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resume submissions")
    def resume_submissions(self, request: HttpRequest, queryset: Any) -> None:
        for account in queryset:
            submissions_resume(account.provider)
        self.message_user(request, "Submissions resumed; held jobs are being sent.")


@admin.register(JobEvent)
class JobEventAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ["job", "created", "from_state", "to_state", "reason"]
    list_filter = ["to_state"]
    list_select_related = ["job"]


@admin.register(Asset)
class AssetAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ["job", "size_bytes", "duration_s", "width", "height", "has_audio", "created"]
    search_fields = ["sha256"]
    list_select_related = ["job"]
    readonly_fields = [f.name for f in Asset._meta.fields]


# API tokens are secrets: the admin lists and revokes them by owner and never shows a key.
# DRF's proxy model names a token by its key, which every admin message would print.
TokenProxy.__str__ = lambda token: f"API token of {token.user}"  # type: ignore[method-assign, attr-defined]
admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(SuperusersOnly, TokenAdmin):
    list_display = ["user", "created"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are made by POST /api/v1/auth/token/, where their owner sees them
