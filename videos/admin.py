from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from videos.models import (
    Asset,
    GenerationJob,
    JobEvent,
    Membership,
    Project,
    Prompt,
    PromptVersion,
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


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "duration", "sound", "state", "created"]
    list_filter = ["state", "kind", "duration", "sound", "project__team"]
    search_fields = ["id", "prompt_text", "provider_task_id", "idempotency_key"]
    date_hierarchy = "created"
    # The callback token is a secret: it is never shown.
    exclude = ["callback_token"]
    inlines = [JobEventInline]


@admin.register(JobEvent)
class JobEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["job", "created", "from_state", "to_state", "reason"]
    list_filter = ["to_state"]


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["job", "size_bytes", "duration_s", "width", "height", "has_audio", "created"]
    search_fields = ["sha256", "job__id"]
    readonly_fields = [f.name for f in Asset._meta.fields]
