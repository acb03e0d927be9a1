from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.html import format_html
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from billing.selectors import job_ledger_total

from videos import pipeline

from videos.models import (
    Asset,
    GenerationJob,
    JobEvent,
    Membership,
    Project,
    Prompt,
    PromptVersion,
    ProviderAccount,
    Team,
)


class ReadOnlyAdminMixin:
    """For history rows: visible to editors, never changed by hand."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "default_duration", "default_aspect_ratio", "default_sound"]
    list_filter = ["team"]
    search_fields = ["name", "description"]


class PromptVersionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PromptVersion
    extra = 0
    fields = ["number", "text", "created_by", "created"]
    readonly_fields = fields


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["title", "project", "updated"]
    list_filter = ["project__team", "project"]
    search_fields = ["title", "versions__text"]
    inlines = [PromptVersionInline]


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["prompt", "number", "created_by", "created"]
    search_fields = ["text", "prompt__title"]


class JobEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = JobEvent
    extra = 0
    fields = ["created", "from_state", "to_state", "reason"]
    readonly_fields = fields


class GenerationJobCreateForm(forms.ModelForm):
    """The admin's "add job" form: validated and priced by the pipeline, like every other door."""

    image = forms.FileField(required=False, help_text="JPEG, PNG or WebP, at most 10 MB.")

    class Meta:
        model = GenerationJob
        fields = [
            "project", "kind", "prompt_version", "prompt_text", "source_image_url",
            "duration", "aspect_ratio", "sound",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prompt_text"].required = False
        self.fields["prompt_text"].help_text = "Or choose a prompt version above."

    def job_inputs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "project": data["project"],
            "kind": data["kind"],
            "prompt_text": data.get("prompt_text") or None,
            "prompt_version": data.get("prompt_version"),
            "duration": data.get("duration"),
            "aspect_ratio": data.get("aspect_ratio"),
            "sound": data.get("sound"),
            "source_image": data.get("image"),
            "image_url": data.get("source_image_url") or "",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            pipeline.job_prepare(**self.job_inputs())
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                field = {"image_url": "source_image_url"}.get(field, field)
                self.add_error(field if field in self.fields else None, messages)
        except pipeline.BudgetExceeded as exc:
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
        totals = job_ledger_total(job)
        return (
            f"estimated ${job.estimated_cost_usd}; charged ${totals['charge']}; "
            f"reserved ${totals['reserve']}, released ${totals['release']}"
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # noqa: ANN201
        if obj is None:
            kwargs["form"] = GenerationJobCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> GenerationJob:
        if change:
            return super().save_form(request, form, change)
        return pipeline.job_create(created_by=request.user, **form.job_inputs())

    def save_model(self, request: HttpRequest, obj: GenerationJob, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None):  # noqa: ANN201
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
        canceled = sum(pipeline.job_cancel(job, by=request.user) for job in queryset)
        self.message_user(request, f"Canceled {canceled} of {queryset.count()} jobs.")

    @admin.action(description="Retry selected failed or canceled jobs")
    def retry_jobs(self, request: HttpRequest, queryset: Any) -> None:
        for job in queryset:
            try:
                new = pipeline.job_retry(job, by=request.user)
            except (ValidationError, pipeline.BudgetExceeded) as exc:
                self.message_user(request, f"Job {str(job.pk)[:8]}: {exc}", level=messages.WARNING)
            else:
                self.message_user(request, f"Job {str(job.pk)[:8]} retried as {str(new.pk)[:8]}.")


    @admin.action(description="Mark selected jobs that need attention as failed (release)")
    def give_up_jobs(self, request: HttpRequest, queryset: Any) -> None:
        done = sum(pipeline.job_give_up(job, by=request.user) for job in queryset)
        self.message_user(request, f"Marked {done} of {queryset.count()} jobs failed.")


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    list_display = ["provider", "paused_at", "pause_code", "pause_reason", "credits_left",
                    "credits_checked_at"]
    readonly_fields = list_display
    actions = ["resume_submissions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resume submissions")
    def resume_submissions(self, request: HttpRequest, queryset: Any) -> None:
        for account in queryset:
            pipeline.submissions_resume(account.provider)
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
TokenProxy.__str__ = lambda token: f"API token of {token.user}"  # type: ignore[method-assign]
admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(TokenAdmin):
    list_display = ["user", "created"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are made by POST /api/v1/auth/token/, where their owner sees them
