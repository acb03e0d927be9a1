"""Money: `POST /estimate/` (what jobs would cost, with no side effects) and
`GET /spend/?project=&month=YYYY-MM` (what a project spent in a month, and how)."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors as billing_selectors
from videos import selectors, services
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
from videos.api.serializers import MONEY, choice
from videos.jobs import balance_check
from videos.models import Kind

MONTH = re.compile(r"^(\d{4})-(\d{2})$")


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
        **MONEY, allow_null=True,
        help_text="The provider balance as last seen (null: not read yet).",
    )
    provider_credits_checked_at = serializers.DateTimeField(allow_null=True)
    credits_queued = serializers.IntegerField(help_text="Credits that jobs already queued will take.")
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


class KindSpendSerializer(serializers.Serializer):
    kind = choice(Kind, source="value")
    charged_usd = serializers.DecimalField(**MONEY)
    jobs = serializers.IntegerField(help_text="Clips charged.")


class DurationSpendSerializer(serializers.Serializer):
    duration = serializers.IntegerField(source="value")
    charged_usd = serializers.DecimalField(**MONEY)
    jobs = serializers.IntegerField(help_text="Clips charged.")


class SoundSpendSerializer(serializers.Serializer):
    sound = serializers.BooleanField(source="value")
    charged_usd = serializers.DecimalField(**MONEY)
    jobs = serializers.IntegerField(help_text="Clips charged.")


class DaySpendSerializer(serializers.Serializer):
    date = serializers.DateField()
    charged_usd = serializers.DecimalField(**MONEY)
    jobs = serializers.IntegerField(help_text="Clips charged.")


class SpendSerializer(serializers.Serializer):
    project = serializers.IntegerField(source="project.pk")
    month = serializers.CharField(help_text="YYYY-MM")
    monthly_budget_usd = serializers.DecimalField(**MONEY, allow_null=True, source="money.cap_usd")
    spent_usd = serializers.DecimalField(
        **MONEY, source="money.spent_usd", help_text="Charges and adjustments in the month."
    )
    charged_usd = serializers.DecimalField(**MONEY, help_text="Charges for clips in the month.")
    adjustments_usd = serializers.DecimalField(**MONEY)
    reserved_usd = serializers.DecimalField(
        **MONEY, source="money.reserved_usd", help_text="Set aside now for jobs in progress."
    )
    queued_usd = serializers.DecimalField(
        **MONEY, source="money.pending_usd", help_text="Queued jobs not yet reserved."
    )
    by_kind = KindSpendSerializer(many=True)
    by_duration = DurationSpendSerializer(many=True)
    by_sound = SoundSpendSerializer(many=True)
    by_day = DaySpendSerializer(many=True)


def _month(value: str | None) -> datetime.date:
    if not value:
        return timezone.now().date().replace(day=1)
    match = MONTH.match(value)
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 1 <= month <= 12 and 1 <= year <= 9998:
            return datetime.date(year, month, 1)
    raise ValidationError({"month": ["Give the month as YYYY-MM, e.g. 2026-01."]})


class SpendApi(ApiView):
    @extend_schema(
        operation_id="spend",
        parameters=[
            OpenApiParameter("project", OpenApiTypes.INT, required=True),
            OpenApiParameter("month", {"type": "string", "pattern": MONTH.pattern},
                             description="YYYY-MM (UTC); default: this month."),
        ],
        responses={200: SpendSerializer, **error_responses(400, 404)},
        description="What a project spent in a calendar month: in all, by kind, duration, sound "
        "and day.",
    )
    def get(self, request: Request) -> Response:
        month = _month(request.query_params.get("month"))
        project_id = request.query_params.get("project")
        if not project_id:
            raise ValidationError({"project": ["This parameter is required."]})
        project = selectors.project_get(user=request.user, project_id=project_id)
        if project is None:
            if selectors.id_or_none(project_id) is None:
                raise ValidationError({"project": ["A valid project id is required."]})
            raise NotFound()
        report: Any = billing_selectors.spend_report(project=project, month=month)
        return Response(SpendSerializer({**report.__dict__, "month": month.strftime("%Y-%m")}).data)
