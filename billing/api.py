"""Billing's endpoint: `GET /spend/?project=&month=YYYY-MM`, what a project spent in a month,
and how. It sits on the API's shared pieces (`videos.api`): the same auth, errors and team scope
as every other endpoint; the report itself is `billing.selectors.spend_report`."""

from __future__ import annotations

import datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from billing.selectors import MONTH, month_named, spend_report
from videos import selectors
from videos.api.base import ApiView, AuthenticatedRequest
from videos.api.errors import error_responses
from videos.api.serializers import MONEY, choice
from videos.models import Kind


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
    month = month_named(value)
    if month is None:
        raise ValidationError({"month": ["Give the month as YYYY-MM, e.g. 2026-01."]})
    return month


class SpendApi(ApiView):
    @extend_schema(
        operation_id="spend",
        parameters=[
            OpenApiParameter("project", OpenApiTypes.INT, required=True),
            OpenApiParameter(
                "month",
                {"type": "string", "pattern": MONTH.pattern},
                description="YYYY-MM (UTC); default: this month.",
            ),
        ],
        responses={200: SpendSerializer, **error_responses(400, 404)},
        description="What a project spent in a calendar month: in all, by kind, duration, sound "
        "and day.",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        month = _month(request.query_params.get("month"))
        project_id = request.query_params.get("project")
        if not project_id:
            raise ValidationError({"project": ["This parameter is required."]})
        project = selectors.project_get(user=request.user, project_id=project_id)
        if project is None:
            if selectors.id_or_none(project_id) is None:
                raise ValidationError({"project": ["A valid project id is required."]})
            raise NotFound()
        report: Any = spend_report(project=project, month=month)
        return Response(SpendSerializer({**report.__dict__, "month": month.strftime("%Y-%m")}).data)
