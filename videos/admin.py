"""The editors' door. Like the API, it writes teams, members, projects and prompts only through
`videos.services` (see `ServiceAdmin`), budgets through `billing.services` and jobs through
`videos.jobs`, so each rule is written once and a refusal reads the same through every door."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from billing import selectors as billing_selectors
from billing import services as billing_services
from videos import services
from videos.jobs import (
    BudgetExceeded,
    CreditsShort,
    balance_check,
    budget_check,
    job_cancel,
    job_give_up,
    job_inputs,
    job_prepare,
    job_retry,
    jobs_queue,
    submissions_resume,
)
from videos.models import (
    Asset,
    GenerationJob,
    JobEvent,
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


class ReadOnlyAdminMixin:
    """For history rows: visible to editors, never changed by hand."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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


def may_add_members(request: HttpRequest) -> bool:
    # People join a team by an invitation they accept; until the admin can send invitations,
    # only superusers put someone in a team directly.
    return bool(request.user.is_superuser)


class MembershipInlineForm(ServiceForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "user" in self.fields:
            # Giving a membership to someone else would be a removal and an addition.
            self.fields["user"].disabled = True


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipInlineForm
    extra = 0
    autocomplete_fields = ["user"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_add_members(request) and super().has_add_permission(request, obj)


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
class TeamAdmin(ServiceAdmin):
    list_display = ["name", "slug", "created"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
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
class MembershipAdmin(ServiceAdmin):
    list_display = ["user", "team", "role", "created"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Moving a membership to another user or team would be a removal and an addition.
        return ["user", "team"] if obj is not None else []

    def has_add_permission(self, request: HttpRequest) -> bool:
        return may_add_members(request) and super().has_add_permission(request)

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


# --- Projects and budgets --------------------------------------------------------------------


BUDGET_FIELDS = ("monthly_cap_usd", "warning_threshold")


class ProjectForm(ServiceForm):
    """A project's settings and its monthly budget, which `billing.services.budget_set` writes."""

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

    class Meta:
        model = Project
        fields = ["team", *services.PROJECT_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        budget = self.instance.pk and billing_selectors.budget_get(project=self.instance)
        if budget:
            self.initial.setdefault("monthly_cap_usd", budget.monthly_cap_usd)
            self.initial.setdefault("warning_threshold", budget.warning_threshold)


@admin.register(Project)
class ProjectAdmin(ServiceAdmin):
    form = ProjectForm
    list_display = ["name", "team", "default_duration", "default_aspect_ratio", "default_sound"]
    list_filter = ["team"]
    search_fields = ["name", "description"]
    fieldsets = [
        (None, {"fields": ["team", "name", "description"]}),
        ("Job defaults", {"fields": ["default_duration", "default_aspect_ratio", "default_sound"]}),
        ("Budget", {"fields": list(BUDGET_FIELDS)}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["team"] if obj is not None else []  # its jobs and money belong to the team

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


class PromptVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PromptVersion
    extra = 0
    fields = ("number", "text", "created_by", "created")
    readonly_fields = fields
    ordering = ["-number"]


@admin.register(Prompt)
class PromptAdmin(ServiceAdmin):
    form = PromptForm
    list_display = ["title", "project", "updated"]
    list_filter = ["project__team", "project"]
    search_fields = ["title", "versions__text"]
    inlines = [PromptVersionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["project"] if obj is not None else []  # its versions belong to the project's jobs

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a prompt's versions are kept forever, and so is the prompt

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


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["prompt", "number", "created_by", "created"]
    search_fields = ["text", "prompt__title"]


class JobEventInline(ReadOnlyAdminMixin, admin.TabularInline):
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
            balance = balance_check([self.spec])
            if not balance.covers:
                raise CreditsShort(balance.message)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        except (BudgetExceeded, CreditsShort) as exc:
            self.add_error(None, str(exc))
        return cleaned

    def _post_clean(self) -> None:
        # The pipeline builds the job; the model's own validation would run before it exists.
        pass


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["short_id", "project", "kind", "duration", "sound", "state", "created"]
    list_filter = ["state", "kind", "duration", "sound", "project__team"]
    search_fields = ["id", "prompt_text", "provider_task_id", "idempotency_key"]
    list_select_related = ["project"]
    date_hierarchy = "created"
    actions = ["cancel_jobs", "retry_jobs", "give_up_jobs"]
    inlines = [JobEventInline]
    # Jobs change only through the pipeline; the callback token is a secret and never shown.
    readonly_fields = [
        "id", "clip", "cost", "team", "project", "kind", "prompt_version", "prompt_text", "source_image",
        "source_image_url", "duration", "aspect_ratio", "sound", "state", "state_reason",
        "estimated_cost_usd", "provider", "provider_task_id", "provider_error_code",
        "provider_error_message", "provider_credits", "result_url", "idempotency_key",
        "retry_of", "attempt", "canceled_by_user", "submit_after", "submit_attempts",
        "next_poll_at", "poll_attempts", "submitted_at", "finished_at", "created_by",
        "created", "updated",
    ]

    @admin.display(description="job", ordering="created")
    def short_id(self, job: GenerationJob) -> str:
        return str(job.pk)[:8]

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
        if change:
            return super().save_form(request, form, change)
        [job] = jobs_queue([form.spec], by=acting_user(request))
        return job

    def save_model(self, request: HttpRequest, obj: GenerationJob, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        for account in ProviderAccount.objects.filter(paused_at__isnull=False):
            self.message_user(
                request,
                f"Submissions to {account.provider} are paused: {account.pause_reason} "
                "Resume them from Provider accounts once fixed.",
                level=messages.ERROR,
            )
        return super().changelist_view(request, extra_context)

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: Any) -> None:
        canceled = sum(job_cancel(job, by=acting_user(request)) for job in queryset)
        self.message_user(request, f"Canceled {canceled} of {queryset.count()} jobs.")

    @admin.action(description="Retry selected failed or canceled jobs")
    def retry_jobs(self, request: HttpRequest, queryset: Any) -> None:
        for job in queryset:
            try:
                new = job_retry(job, by=acting_user(request))
            except (ValidationError, BudgetExceeded) as exc:
                self.message_user(request, f"Job {str(job.pk)[:8]}: {exc}", level=messages.WARNING)
            else:
                self.message_user(request, f"Job {str(job.pk)[:8]} retried as {str(new.pk)[:8]}.")


    @admin.action(description="Mark selected jobs that need attention as failed (release)")
    def give_up_jobs(self, request: HttpRequest, queryset: Any) -> None:
        done = sum(job_give_up(job, by=acting_user(request)) for job in queryset)
        self.message_user(request, f"Marked {done} of {queryset.count()} jobs failed.")


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    list_display = ("provider", "paused_at", "pause_code", "pause_reason", "credits_left",
                    "credits_checked_at")
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
class JobEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["job", "created", "from_state", "to_state", "reason"]
    list_filter = ["to_state"]


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["job", "size_bytes", "duration_s", "width", "height", "has_audio", "created"]
    search_fields = ["sha256", "job__id"]
    readonly_fields = [f.name for f in Asset._meta.fields]


# API tokens are secrets: the admin lists and revokes them by owner and never shows a key.
# DRF's proxy model names a token by its key, which every admin message would print.
TokenProxy.__str__ = lambda token: f"API token of {token.user}"  # type: ignore[method-assign, attr-defined]
admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(TokenAdmin):
    list_display = ["user", "created"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are made by POST /api/v1/auth/token/, where their owner sees them
