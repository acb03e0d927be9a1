"""Money in the admin: the price list (superusers), budgets at a glance and the ledger, read-only
and narrowed to the user's teams like every other admin (`videos.admin_scope`)."""

from __future__ import annotations

import csv
import datetime
import itertools
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

from billing import selectors
from billing.models import Budget, EntryKind, LedgerEntry, Price
from videos.admin_scope import SuperusersOnly, TeamScopedAdmin, scope


@admin.register(Price)
class PriceAdmin(SuperusersOnly, admin.ModelAdmin):
    list_display = ["provider", "model", "duration", "sound", "usd", "credits", "effective_from"]
    list_filter = ["provider", "model", "duration", "sound"]


@admin.register(Budget)
class BudgetAdmin(TeamScopedAdmin, admin.ModelAdmin):
    """Budgets at a glance. Owners set them on their project's admin page, which writes them
    through `services.budget_set` like the API does, so the budget rules live in one place."""

    list_display = ["project", "monthly_cap_usd", "warning_threshold", "updated"]
    list_filter = ["project__team"]
    search_fields = ["project__name"]
    list_select_related = ["project"]


def parse_month(value: str | None) -> datetime.date | None:
    """ "2026-11" -> 2026-11-01; None for anything else."""
    try:
        return datetime.datetime.strptime(value or "", "%Y-%m").date()
    except ValueError:
        return None


class MonthFilter(admin.SimpleListFilter):
    """The calendar months (UTC, as budgets count them) of the user's ledger entries."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        months = selectors.ledger_months(entries=model_admin.get_queryset(request))
        return [(f"{month:%Y-%m}", f"{month:%B %Y}") for month in months]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        month = parse_month(self.value())
        if month is None:
            return queryset
        start, end = selectors.month_bounds(month)
        return queryset.filter(created__gte=start, created__lt=end)


def spreadsheet_safe(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row with text that a spreadsheet would run as a formula (a project named "=...")
    kept as text. Amounts and ids are written as they are."""
    return tuple(
        f"'{cell}"
        if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@") and index in (2, 6)
        else cell
        for index, cell in enumerate(row)
    )


class Echo:
    """A file that hands back what is written to it, for streaming a CSV row by row."""

    def write(self, value: str) -> str:
        return value


@admin.register(LedgerEntry)
class LedgerEntryAdmin(TeamScopedAdmin, admin.ModelAdmin):
    """The append-only ledger: read here, never edited or deleted. The list shows the totals
    of what it is filtered to, and a month of it downloads as CSV."""

    list_display = ["created", "project", "job", "kind", "amount", "note"]
    list_filter = [MonthFilter, "kind", "project"]
    search_fields = ["note"]
    list_select_related = ["project", "job"]
    change_list_template = "admin/reelforge/ledger_change_list.html"

    def get_urls(self) -> list[Any]:
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_view),
            name="billing_ledgerentry_export",
        )
        return [export, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            totals = selectors.ledger_totals(entries=changelist.queryset)
            month = parse_month(request.GET.get("month")) or timezone.now().date().replace(day=1)
            query = f"month={month:%Y-%m}"
            if request.GET.get("project__id__exact"):
                query += f"&project={request.GET['project__id__exact']}"
            context = response.context_data  # type: ignore[attr-defined]  # a TemplateResponse
            context["ledger_totals"] = [
                (EntryKind(kind).label, totals[kind]) for kind in EntryKind.values
            ] + [("Spent (charges and adjustments)", totals["spent"])]
            context["export_url"] = f"{reverse('admin:billing_ledgerentry_export')}?{query}"
            context["export_month"] = month
        return response

    def export_view(self, request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        """A calendar month of the ledger (`?month=2026-11`, this month by default) of the
        user's projects, or of one of them (`&project=<id>`), as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        month = parse_month(request.GET.get("month")) or timezone.now().date().replace(day=1)
        projects = scope(selectors.project_model()._default_manager.all(), request)
        wanted = request.GET.get("project")
        if wanted:
            projects = projects.filter(pk=wanted) if wanted.isdigit() else projects.none()
        project_ids = list(projects.values_list("pk", flat=True))
        writer = csv.writer(Echo())
        rows = selectors.ledger_month_rows(project_ids=project_ids, month=month)
        response = StreamingHttpResponse(
            (
                writer.writerow(spreadsheet_safe(row))
                for row in itertools.chain([selectors.LEDGER_CSV_COLUMNS], rows)
            ),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="ledger-{month:%Y-%m}.csv"'
        return response
