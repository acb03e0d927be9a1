"""Webhook endpoints (owners of the project's team only): make one (its signing secret is in
that answer only), list, change, delete, rotate the secret, send a test event; list an
endpoint's deliveries with every attempt, and send one again."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from videos import selectors
from videos.api.base import (
    PAGE_PARAMETERS,
    ApiView,
    AuthenticatedRequest,
    id_parameter,
    page_of,
    paginated_response,
)
from videos.api.errors import error_responses
from videos.api.permissions import found, require_role
from videos.api.serializers import TeamObjectField
from videos.models import Role, WebhookEndpoint
from videos.webhooks import delivery as sending
from videos.webhooks.endpoints import (
    SUBSCRIBABLE,
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
    webhook_update,
)


def events_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE),
        min_length=1,
        max_length=20,
        help_text="The events sent here.",
        **kwargs,
    )


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    secret_hint = serializers.CharField(help_text="The secret's first characters, to tell it.")
    previous_secret_expires = serializers.DateTimeField(
        allow_null=True, help_text="Until then the previous secret signs beside the new one."
    )
    failing_since = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField()
    created = serializers.DateTimeField()


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(
        help_text="The signing secret (`whsec_...`): shown in this answer only, keep it."
    )


class WebhookCreateInput(serializers.Serializer):
    project = TeamObjectField(
        lookup=lambda user, pk: selectors.project_get(user=user, project_id=pk), name="project"
    )
    url = serializers.URLField(max_length=2000)
    events = events_field()


class WebhookChangeInput(serializers.Serializer):
    url = serializers.URLField(max_length=2000, required=False)
    events = events_field(required=False)
    enabled = serializers.BooleanField(required=False, help_text="True again after failures.")


class AttemptSerializer(serializers.Serializer):
    created = serializers.DateTimeField()
    status = serializers.IntegerField(allow_null=True, help_text="null: no answer.")
    duration_ms = serializers.IntegerField()
    response_body = serializers.CharField(help_text="Its first 1,000 characters.")
    error = serializers.CharField()


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    message_id = serializers.CharField(help_text="Its `webhook-id`.")
    event = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_http_status = serializers.IntegerField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created = serializers.DateTimeField()
    tries = AttemptSerializer(many=True, source="tries.all")


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    return {**WebhookSerializer(endpoint).data, "secret": secret}


def _endpoint(request: AuthenticatedRequest, webhook_id: str) -> WebhookEndpoint:
    endpoint = found(selectors.webhook_get(user=request.user, webhook_id=webhook_id))
    require_role(request.user, endpoint.project.team_id, Role.OWNER)
    return endpoint


class WebhookListApi(ApiView):
    @extend_schema(
        operation_id="webhooks_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(WebhookSerializer, "WebhookPage"), **error_responses(400, 404)},
        description="The endpoints of projects whose team you own.",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return paginated_response(
            request,
            self,
            selectors.webhook_list(user=request.user),
            ordering=("created", "id"),
            to_data=lambda rows: WebhookSerializer(rows, many=True).data,
        )

    @extend_schema(
        operation_id="webhooks_create",
        request=WebhookCreateInput,
        responses={201: WebhookWithSecretSerializer, **error_responses(400, 403)},
        description="Deliveries carry `webhook-id`, `webhook-timestamp` and `webhook-signature` "
        "(Standard Webhooks); verify them with the secret in this answer, shown only here.",
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        body = WebhookCreateInput(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        project = body.validated_data["project"]
        require_role(request.user, project.team_id, Role.OWNER)
        endpoint, secret = webhook_create(
            project=project,
            url=body.validated_data["url"],
            events=body.validated_data["events"],
            by=request.user,
        )
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)


class WebhookDetailApi(ApiView):
    @extend_schema(
        operation_id="webhooks_retrieve",
        parameters=[id_parameter("webhook_id")],
        responses={200: WebhookSerializer, **error_responses(403, 404)},
    )
    def get(self, request: AuthenticatedRequest, webhook_id: str) -> Response:
        return Response(WebhookSerializer(_endpoint(request, webhook_id)).data)

    @extend_schema(
        operation_id="webhooks_update",
        parameters=[id_parameter("webhook_id")],
        request=WebhookChangeInput,
        responses={200: WebhookSerializer, **error_responses(400, 403, 404)},
    )
    def patch(self, request: AuthenticatedRequest, webhook_id: str) -> Response:
        endpoint = _endpoint(request, webhook_id)
        body = WebhookChangeInput(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(WebhookSerializer(webhook_update(endpoint, **body.validated_data)).data)

    @extend_schema(
        operation_id="webhooks_destroy",
        parameters=[id_parameter("webhook_id")],
        responses={204: None, **error_responses(403, 404)},
    )
    def delete(self, request: AuthenticatedRequest, webhook_id: str) -> Response:
        webhook_delete(_endpoint(request, webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateApi(ApiView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        parameters=[id_parameter("webhook_id")],
        request=None,
        responses={200: WebhookWithSecretSerializer, **error_responses(403, 404)},
        description="A new secret, shown in this answer only. For 24 hours deliveries carry "
        "two signatures, by the new secret and the old, so a receiver can switch at any time.",
    )
    def post(self, request: AuthenticatedRequest, webhook_id: str) -> Response:
        endpoint = _endpoint(request, webhook_id)
        secret = webhook_rotate_secret(endpoint)
        return Response(_with_secret(endpoint, secret))


class WebhookTestApi(ApiView):
    @extend_schema(
        operation_id="webhooks_test",
        parameters=[id_parameter("webhook_id")],
        request=None,
        responses={202: DeliverySerializer, **error_responses(403, 404)},
        description="Send a `webhook.test` event to this endpoint now.",
    )
    def post(self, request: AuthenticatedRequest, webhook_id: str) -> Response:
        delivery = sending.send_test(_endpoint(request, webhook_id))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryListApi(ApiView):
    @extend_schema(
        operation_id="webhooks_deliveries",
        parameters=[id_parameter("webhook_id"), *PAGE_PARAMETERS],
        responses={
            200: page_of(DeliverySerializer, "DeliveryPage"),
            **error_responses(400, 403, 404),
        },
        description="Newest first, each with every attempt.",
    )
    def get(self, request: AuthenticatedRequest, webhook_id: str) -> Response:
        endpoint = _endpoint(request, webhook_id)
        return paginated_response(
            request,
            self,
            endpoint.deliveries.prefetch_related("tries"),
            ordering=("-created", "-id"),
            to_data=lambda rows: DeliverySerializer(rows, many=True).data,
        )


class WebhookResendApi(ApiView):
    @extend_schema(
        operation_id="webhooks_resend",
        parameters=[id_parameter("webhook_id"), id_parameter("delivery_id")],
        request=None,
        responses={202: DeliverySerializer, **error_responses(403, 404)},
        description="The same message again, with its `webhook-id`, as a new delivery.",
    )
    def post(self, request: AuthenticatedRequest, webhook_id: str, delivery_id: str) -> Response:
        endpoint = _endpoint(request, webhook_id)
        pk = selectors.id_or_none(delivery_id)
        original = endpoint.deliveries.filter(pk=pk).first() if pk else None
        if original is None:
            raise NotFound()
        return Response(
            DeliverySerializer(sending.delivery_resend(original)).data,
            status=status.HTTP_202_ACCEPTED,
        )
