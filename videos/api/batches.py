"""Batches: many clips from one prompt template. Preview one (every row's errors and the total,
nothing saved), create one (all rows queued, or none), follow it, cancel what remains, retry
what failed, and export its results as CSV or its clips as a ZIP."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from videos import batches, selectors
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
from videos.api.serializers import MONEY, OptionalBooleanField, TeamObjectField, choice
from videos.batches import BatchInvalid, BatchPlan
from videos.clip_links import clip_link
from videos.models import AspectRatio, Batch, Duration, Mode, Role
from videos.providers.base import NEGATIVE_PROMPT_MAX_CHARS
from videos.zips import zip_stream

# The rows' CSV may be large; the rest of a form is small.
BATCH_MAX_BODY_BYTES = batches.CSV_MAX_BYTES + 1024 * 1024


class TemplateBatchInputSerializer(serializers.Serializer):
    prompt_version = TeamObjectField(
        lookup=lambda user, pk: selectors.prompt_version_visible(user=user).filter(pk=pk).first(),
        name="prompt version",
        help_text="The template: a saved prompt's version (its `version_id`). Its placeholders, "
        "like {product}, are the variables each row fills.",
    )
    duration = serializers.ChoiceField(
        choices=Duration.choices,
        required=False,
        allow_null=True,
        help_text="Seconds, for rows that name none; default: the project's.",
    )
    aspect_ratio = choice(
        AspectRatio, required=False, help_text="For text-to-video rows that name none."
    )
    sound = OptionalBooleanField(required=False, help_text="For rows that name none.")
    negative_prompt = serializers.CharField(
        max_length=NEGATIVE_PROMPT_MAX_CHARS,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="For rows that name none: what the clips must not show. Projects on the "
        "official Kling API only.",
    )
    mode = choice(
        Mode,
        required=False,
        help_text="For rows that name none: std (720p) or pro (1080p). Projects on the official "
        "Kling API only.",
    )
    rows = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="One object a clip: the template's variables, and optionally `duration`, "
        "`aspect_ratio`, `sound`, `negative_prompt`, `mode` and `image_url` (which makes the "
        "row image to video).",
    )
    file = serializers.FileField(
        required=False,
        help_text="Multipart only, instead of `rows`: a UTF-8 CSV whose header row names the "
        "columns (the variables and the optional ones).",
    )
    wait_for_credits = serializers.BooleanField(
        default=False,
        help_text="Queue even when the provider balance cannot pay for them yet; they wait.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        upload = data.pop("file", None)
        if upload is not None and "rows" in data:
            raise serializers.ValidationError({"file": ["Give `rows` or a `file`, not both."]})
        if upload is not None:
            data["rows"] = batches.rows_from_csv(upload.read(batches.CSV_MAX_BYTES + 1))
        if "rows" not in data:
            raise serializers.ValidationError({"rows": ["Give the rows, or a CSV as `file`."]})
        return data


def _plan_arguments(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_version": data["prompt_version"],
        "rows": data["rows"],
        "duration": data.get("duration"),
        "aspect_ratio": data.get("aspect_ratio") or "",
        "sound": data.get("sound"),
        "negative_prompt": data.get("negative_prompt") or "",
        "mode": data.get("mode") or "",
    }


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="From 1, as in the CSV below its header; 0: all.")
    column = serializers.CharField()
    message = serializers.CharField()


class PreviewRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(source="number")
    values = serializers.DictField()
    prompt = serializers.CharField(help_text="The prompt this row makes ('' if invalid).")
    estimated_cost_usd = serializers.DecimalField(**MONEY, source="price_usd", allow_null=True)


class PreviewSerializer(serializers.Serializer):
    variables = serializers.ListField(child=serializers.CharField())
    rows = PreviewRowSerializer(many=True)
    # `errors` is a Serializer's own attribute: the field is declared under another name.
    row_errors = RowErrorSerializer(many=True, source="errors")
    estimated_cost_usd = serializers.DecimalField(**MONEY, source="total_usd")
    budget_left_usd = serializers.DecimalField(**MONEY, allow_null=True)
    budget_refusal = serializers.CharField()
    balance_refusal = serializers.CharField()
    can_queue = serializers.BooleanField()


class BatchJobSerializer(serializers.Serializer):
    row = serializers.IntegerField(source="batch_row")
    id = serializers.UUIDField()
    state = serializers.CharField()
    prompt = serializers.CharField(source="prompt_text")
    estimated_cost_usd = serializers.DecimalField(**MONEY)
    cost_usd = serializers.DecimalField(**MONEY, allow_null=True)
    attempt = serializers.IntegerField()


class ProgressSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Rows whose job has ended.")
    by_state = serializers.DictField(child=serializers.IntegerField())
    spent_usd = serializers.DecimalField(**MONEY, help_text="Charged so far, every attempt.")
    finished = serializers.BooleanField()


class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    prompt_version = serializers.IntegerField(source="prompt_version_id")
    duration = serializers.IntegerField(allow_null=True)
    aspect_ratio = serializers.CharField()
    sound = serializers.BooleanField(allow_null=True)
    negative_prompt = serializers.CharField(help_text="Empty when none was given.")
    mode = serializers.CharField(help_text="std or pro; empty for the provider's default.")
    rows = serializers.ListField(child=serializers.DictField())
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created = serializers.DateTimeField()


class BatchDetailSerializer(BatchSerializer):
    progress = ProgressSerializer()
    jobs = BatchJobSerializer(many=True, help_text="Each row's newest attempt, in row order.")


def batch_data(batch: Batch) -> dict[str, Any]:
    """The batch as `BatchDetailSerializer` describes it."""
    jobs = batches.batch_jobs(batch)
    return {
        **BatchSerializer(batch).data,
        "progress": ProgressSerializer(batches.batch_progress(batch, jobs)).data,
        "jobs": BatchJobSerializer(jobs, many=True).data,
    }


def _invalid(plan: BatchPlan) -> serializers.ValidationError:
    """Each row's errors under `rows.<row>.<column>`; the batch's own under `rows`."""
    rows: dict[str, Any] = {}
    for error in plan.errors:
        if error.row == 0:
            rows.setdefault("non_field_errors", []).append(error.message)
        else:
            rows.setdefault(str(error.row), {}).setdefault(error.column, []).append(error.message)
    return serializers.ValidationError({"rows": rows})


class _BatchInputApi(ApiView):
    parser_classes = [JSONParser, MultiPartParser]
    max_body_bytes = BATCH_MAX_BODY_BYTES

    def _input(self, request: Request) -> dict[str, Any]:
        body = TemplateBatchInputSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        return dict(body.validated_data)


BATCH_REQUEST = {
    "application/json": TemplateBatchInputSerializer,
    "multipart/form-data": TemplateBatchInputSerializer,
}


class BatchListApi(_BatchInputApi):
    @extend_schema(
        operation_id="batches_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(BatchSerializer, "BatchPage"), **error_responses(400, 404)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return paginated_response(
            request,
            self,
            selectors.batch_list(user=request.user),
            ordering=("-created", "-id"),
            to_data=lambda rows: BatchSerializer(rows, many=True).data,
        )

    @extend_schema(
        operation_id="batches_create",
        request=BATCH_REQUEST,
        responses={201: BatchDetailSerializer, **error_responses(400, 402, 403, 413, 415)},
        description="Every row is checked and priced first; then all are queued, or none. "
        "Errors are keyed by row (from 1) and column: "
        '`{"rows": {"3": {"city": [...]}}}` appears as the field `rows.3.city`.',
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self._input(request)
        require_role(request.user, data["prompt_version"].prompt.project.team_id, Role.EDITOR)
        try:
            batch = batches.batch_create(
                by=request.user,
                wait_for_credits=data.get("wait_for_credits", False),
                **_plan_arguments(data),
            )
        except BatchInvalid as exc:
            raise _invalid(exc.plan) from None
        return Response(batch_data(batch), status=status.HTTP_201_CREATED)


class BatchPreviewApi(_BatchInputApi):
    @extend_schema(
        operation_id="batches_preview",
        request=BATCH_REQUEST,
        responses={200: PreviewSerializer, **error_responses(400, 413, 415)},
        description="What the batch would queue: each row's prompt and price, every row's "
        "errors, the total against the budget and the provider balance. Nothing is saved.",
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        plan = batches.batch_plan(**_plan_arguments(self._input(request)))
        return Response(PreviewSerializer(plan).data)


def _batch(request: AuthenticatedRequest, batch_id: str) -> Batch:
    return found(selectors.batch_get(user=request.user, batch_id=batch_id))


class BatchDetailApi(ApiView):
    @extend_schema(
        operation_id="batches_retrieve",
        parameters=[id_parameter("batch_id")],
        responses={200: BatchDetailSerializer, **error_responses(404)},
    )
    def get(self, request: AuthenticatedRequest, batch_id: str) -> Response:
        return Response(batch_data(_batch(request, batch_id)))


class ActionResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="Rows canceled, or retried.")
    detail = serializers.CharField(help_text="Why some could not be, or ''.")
    batch = BatchDetailSerializer()


class BatchCancelRemainingApi(ApiView):
    @extend_schema(
        operation_id="batches_cancel_remaining",
        parameters=[id_parameter("batch_id")],
        request=None,
        responses={200: ActionResultSerializer, **error_responses(403, 404)},
        description="Cancel every row whose job has not ended (see `POST /jobs/{id}/cancel/`).",
    )
    def post(self, request: AuthenticatedRequest, batch_id: str) -> Response:
        batch = _batch(request, batch_id)
        require_role(request.user, batch.team_id, Role.EDITOR)
        changed = batches.batch_cancel_remaining(batch=batch, by=request.user)
        return Response({"changed": changed, "detail": "", "batch": batch_data(batch)})


class BatchRetryFailedApi(ApiView):
    @extend_schema(
        operation_id="batches_retry_failed",
        parameters=[id_parameter("batch_id")],
        request=None,
        responses={200: ActionResultSerializer, **error_responses(403, 404)},
        description="A new attempt of every failed row, until the budget or balance runs out.",
    )
    def post(self, request: AuthenticatedRequest, batch_id: str) -> Response:
        batch = _batch(request, batch_id)
        require_role(request.user, batch.team_id, Role.EDITOR)
        retried, refusal = batches.batch_retry_failed(batch=batch, by=request.user)
        return Response({"changed": len(retried), "detail": refusal, "batch": batch_data(batch)})


class _Echo:
    """A file-like object whose write() hands back what it was given (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def _results_csv(request: Request, batch: Batch) -> Iterator[str]:
    def absolute_link(job: Any) -> str:
        return request.build_absolute_uri(clip_link(job)[0])

    writer = csv.writer(_Echo())
    for row in batches.batch_export_rows(batch, absolute_link):
        yield writer.writerow(row)


class BatchResultsCsvApi(ApiView):
    @extend_schema(
        operation_id="batches_results_csv",
        parameters=[id_parameter("batch_id")],
        responses={(200, "text/csv"): OpenApiTypes.STR, **error_responses(404)},
        description="One line a row: its variables, job id, state, cost and a clip link that "
        "works without a token for an hour.",
    )
    def get(self, request: AuthenticatedRequest, batch_id: str) -> StreamingHttpResponse:
        batch = _batch(request, batch_id)
        response = StreamingHttpResponse(
            _results_csv(request, batch), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.csv"'
        return response


class BatchClipsZipApi(ApiView):
    @extend_schema(
        operation_id="batches_clips_zip",
        parameters=[id_parameter("batch_id")],
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="Streamed: it is never built in memory."
            ),
            **error_responses(404),
        },
        description="Every finished clip of the batch, named by its row.",
    )
    def get(self, request: AuthenticatedRequest, batch_id: str) -> StreamingHttpResponse:
        batch = _batch(request, batch_id)
        files = [
            (f"batch-{batch.pk}/row-{job.batch_row:04d}.mp4", job.asset.file)
            for job in batches.batch_jobs(batch)
            if hasattr(job, "asset")
        ]
        response = StreamingHttpResponse(zip_stream(files), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}-clips.zip"'
        return response
