from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from billing.models import Budget, LedgerEntry, Price


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["provider", "model", "duration", "sound", "usd", "credits", "effective_from"]
    list_filter = ["provider", "model", "duration", "sound"]


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """Budgets at a glance. They are set on their project's admin page, which writes them
    through `services.budget_set` like the API does, so the budget rules live in one place."""

    list_display = ["project", "monthly_cap_usd", "warning_threshold", "updated"]
    search_fields = ["project__name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["created", "project", "job", "kind", "amount", "note"]
    list_filter = ["kind", "project"]
    search_fields = ["job__id", "note"]
    date_hierarchy = "created"

    # The ledger is append-only: history is read here, never edited or deleted.
    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
