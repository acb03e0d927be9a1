"""`POST /estimate/`: what jobs would cost, with no side effects. It takes the bodies of
`POST /jobs/` and `/jobs/batch/`, so it sits with the jobs API; spend reports are billing's
(`billing/api.py`)."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from videos import services
from videos.api.base import ApiView
from videos.api.errors import error_responses
from videos.api.jobs import (
    UPLOAD_MAX_BODY_BYTES,
    BatchInputSerializer,
    JobFormSerializer,
    JobInputSerializer,
    job_body,
    job_inputs,
)
from videos.api.serializers import MONEY
from videos.jobs import balance_check


class EstimateSerializer(serializers.Serializer):
    estimated_cost_usd = serializers.DecimalField(**MONEY, help_text="All the jobs together.")
    jobs = serializers.ListField(
        child=serializers.DecimalField(**MONEY), help_text="Each job's price, in request order."
    )
    within_budget = serializers.BooleanField(
        help_text="Whether the budgets would accept these jobs now."
    )
    budget_message = serializers.CharField(help_text="Why not, when they would not.")
    provider_credits_left = serializers.DecimalField(
        **MONEY,
        allow_null=True,
        help_text="The provider balance as last seen (null: not read yet).",
    )
    provider_credits_checked_at = serializers.DateTimeField(allow_null=True)
    credits_queued = serializers.IntegerField(
        help_text="Credits that jobs already queued will take."
    )
    credits_needed = serializers.IntegerField(help_text="Credits these jobs will take.")
    within_balance = serializers.BooleanField(
        help_text="Whether the balance can pay for these beside the queued jobs."
    )
    balance_message = serializers.CharField(help_text="Why not, when it cannot.")


class EstimateApi(ApiView):
    parser_classes = [JSONParser, MultiPartParser]
    max_body_bytes = UPLOAD_MAX_BODY_BYTES

    @extend_schema(
        operation_id="estimate",
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="EstimateRequest",
                serializers=[JobInputSerializer, BatchInputSerializer],
                resource_type_field_name=None,
            ),
            "multipart/form-data": JobFormSerializer,
        },
        responses={200: EstimateSerializer, **error_responses(400, 413, 415)},
        description="The body of a job or of a batch: validated and priced, nothing saved.",
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.data, dict) and "jobs" in request.data:
            batch = BatchInputSerializer(data=request.data, context={"request": request})
            batch.is_valid(raise_exception=True)
            items = [job_inputs(item) for item in batch.validated_data["jobs"]]
        else:
            items = [job_inputs(job_body(request).validated_data)]
        specs, refusal = services.jobs_prepare_batch(items=items, refuse_over_budget=False)
        prices = [spec.estimated_cost_usd for spec in specs]
        balance = balance_check(specs)
        return Response(
            EstimateSerializer(
                {
                    "estimated_cost_usd": sum(prices, Decimal("0")),
                    "jobs": prices,
                    "within_budget": refusal is None,
                    "budget_message": refusal or "",
                    "provider_credits_left": balance.credits_left,
                    "provider_credits_checked_at": balance.checked_at,
                    "credits_queued": balance.queued_credits,
                    "credits_needed": balance.credits_needed,
                    "within_balance": balance.covers,
                    "balance_message": balance.message,
                }
            ).data
        )
