"""Webhook endpoints and their deliveries."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from videos.admin.base import ServiceAdmin, adopt
from videos.admin_scope import (
    TeamScopedAdmin,
    TeamScopedInline,
    team_action,
)
from videos.models import (
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from videos.webhooks import delivery as webhook_delivery
from videos.webhooks.endpoints import webhook_delete, webhook_update


class WebhookDeliveryInline(TeamScopedInline, admin.TabularInline):
    model = WebhookDelivery
    fields = readonly_fields = (
        "event",
        "status",
        "attempts",
        "last_http_status",
        "next_attempt_at",
        "created",
    )
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created"]
    view_right = Role.OWNER


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TeamScopedAdmin, ServiceAdmin):
    """Owners look after their projects' endpoints here; new endpoints and new secrets are made
    on the portal's Webhooks page or through the API, where the secret is shown once."""

    list_display = ["url", "project", "enabled", "event_list", "failing_since"]
    list_filter = ["enabled", "project__team", "project"]
    list_select_related = ["project"]
    fields = [
        "project",
        "url",
        "events",
        "enabled",
        "secret_hint",
        "failing_since",
        "disabled_reason",
    ]
    readonly_fields = ["project", "secret_hint", "failing_since", "disabled_reason"]
    inlines = [WebhookDeliveryInline]
    actions = ["send_test_event"]
    view_right = change_right = delete_right = Role.OWNER

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made where its secret can be shown once: the portal or the API

    @admin.display(description="events")
    def event_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events)

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        saved = webhook_update(
            WebhookEndpoint.objects.get(pk=obj.pk),
            url=data["url"],
            events=data["events"],
            enabled=data["enabled"],
        )
        adopt(obj, saved)

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhook_delete(obj)

    @team_action(right=Role.OWNER, description="Send a test event to the selected endpoints")
    def send_test_event(self, request: HttpRequest, queryset: Any) -> None:
        sent = [webhook_delivery.send_test(endpoint) for endpoint in queryset]
        self.message_user(request, f"Sent {len(sent)} test events.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ["event", "endpoint", "status", "attempts", "last_http_status", "created"]
    list_filter = ["status", "event"]
    list_select_related = ["endpoint__project"]
    fields = readonly_fields = (
        "endpoint",
        "message_id",
        "event",
        "payload",
        "status",
        "attempts",
        "last_http_status",
        "next_attempt_at",
        "delivered_at",
        "created",
        "tries_made",
    )
    actions = ["send_again"]
    view_right = Role.OWNER

    @admin.display(description="attempts made")
    def tries_made(self, delivery: WebhookDelivery) -> str:
        return (
            "; ".join(
                f"{attempt.created:%Y-%m-%d %H:%M:%S}: {attempt.status or attempt.error} in "
                f"{attempt.duration_ms} ms"
                for attempt in delivery.tries.all()
            )
            or "none yet"
        )

    @team_action(right=Role.OWNER, description="Send the selected deliveries again")
    def send_again(self, request: HttpRequest, queryset: Any) -> None:
        again = [webhook_delivery.delivery_resend(delivery) for delivery in queryset]
        self.message_user(request, f"Sent {len(again)} deliveries again.", messages.SUCCESS)
