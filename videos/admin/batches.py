"""Batches: looked up here, made on the portal."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from videos import batches
from videos.admin.base import usd
from videos.admin_scope import (
    TeamScopedAdmin,
)
from videos.models import (
    Batch,
)


@admin.register(Batch)
class BatchAdmin(TeamScopedAdmin, admin.ModelAdmin):
    """Batches are made on the portal's batch page (the Prompts list's "Make a batch" leads
    there); here they are looked up, with their progress."""

    list_display = ["__str__", "project", "prompt_version", "row_count", "progress", "created"]
    list_filter = ["project__team", "project"]
    list_select_related = ["project", "prompt_version__prompt"]
    fields = readonly_fields = (
        "project",
        "prompt_version",
        "rows",
        "duration",
        "aspect_ratio",
        "sound",
        "negative_prompt",
        "mode",
        "created_by",
        "created",
        "progress",
        "portal_page",
    )

    @admin.display(description="rows")
    def row_count(self, batch: Batch) -> int:
        return len(batch.rows)

    @admin.display(description="progress")
    def progress(self, batch: Batch) -> str:
        done = batches.batch_progress(batch)
        return f"{done.done} of {done.rows} done, {usd(done.spent_usd)} spent"

    @admin.display(description="follow it")
    def portal_page(self, batch: Batch) -> Any:
        url = reverse("portal:batch", args=[batch.pk])
        return format_html('<a href="{}">The batch\'s page: jobs live, exports, actions</a>', url)
