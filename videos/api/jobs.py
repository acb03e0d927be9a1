"""Generation jobs: create one (JSON, or multipart with an image) or a batch, list and read
them, cancel, retry, and download the clip and its poster."""

from __future__ import annotations

import datetime
import re
import threading
from typing import Any

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from videos import selectors, services
from videos.api.base import (
    PAGE_PARAMETERS,
    ApiView,
    AuthenticatedRequest,
    id_parameter,
    page_of,
    paginated_response,
)
from videos.api.errors import Conflict, error_responses
from videos.api.files import stored_file_response
from videos.api.permissions import found, require_role
from videos.api.serializers import (
    JobSerializer,
    JobSummarySerializer,
    OptionalBooleanField,
    TeamObjectField,
    choice,
    prompt_field,
)
from videos.api.throttling import JobReadRateThrottle, TeamRateThrottle
from videos.clip_links import clip_link
from videos.jobs import job_cancel, job_inputs, job_retry
from videos.models import AspectRatio, Duration, GenerationJob, JobState, Kind, Mode, Role
from videos.providers.base import IMAGE_MAX_BYTES, NEGATIVE_PROMPT_MAX_CHARS

BATCH_MAX_JOBS = 100
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:~-]{1,150}$")
# An image upload may be 10 MB; the rest of a form is small.
UPLOAD_MAX_BODY_BYTES = IMAGE_MAX_BYTES + 1024 * 1024


# --- Input -----------------------------------------------------------------------------------


class JobInputSerializer(serializers.Serializer):
    project = TeamObjectField(
        lookup=lambda user, pk: selectors.project_get(user=user, project_id=pk), name="project"
    )
    kind = choice(Kind)
    prompt = prompt_field(
        required=False,
        help_text="The prompt text; or name a saved prompt with `prompt_id` (and `version`).",
    )
    prompt_id = TeamObjectField(
        lookup=lambda user, pk: selectors.prompt_get(user=user, prompt_id=pk),
        name="prompt",
        required=False,
        allow_null=True,
        help_text="A saved prompt (see /prompts/): its current version, or `version`.",
    )
    version = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="With `prompt_id`: that prompt's version number (default: its current one).",
    )
    prompt_version = TeamObjectField(
        lookup=lambda user, pk: selectors.prompt_version_visible(user=user).filter(pk=pk).first(),
        name="prompt version",
        required=False,
        allow_null=True,
        help_text="A saved prompt's version by its own id (a prompt's `version_id`).",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """Resolve `prompt_id` + `version` to the prompt version they name (an address, not a
        rule: `job_prepare` judges the job)."""
        saved, number = data.pop("prompt_id", None), data.pop("version", None)
        if number is not None and saved is None:
            raise ValidationError({"version": ["Give `prompt_id` with `version`."]})
        if saved is None:
            return data
        if data.get("prompt_version") is not None:
            raise ValidationError(
                {
                    "prompt_id": [
                        "Name a saved prompt by `prompt_id` or by `prompt_version`, not both."
                    ]
                }
            )
        version = selectors.prompt_version_of(prompt=saved, number=number)
        if version is None:
            raise ValidationError({"version": [f"The prompt has no version {number}."]})
        data["prompt_version"] = version
        return data

    duration = serializers.ChoiceField(
        choices=Duration.choices, required=False, help_text="Seconds; default: the project's."
    )
    aspect_ratio = choice(
        AspectRatio, required=False, help_text="Text to video only; default: the project's."
    )
    sound = OptionalBooleanField(required=False, help_text="Default: the project's.")
    image_url = serializers.URLField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="Image to video: a public http(s) URL of a JPEG, PNG or WebP image.",
    )
    negative_prompt = serializers.CharField(
        max_length=NEGATIVE_PROMPT_MAX_CHARS,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="What the clip must not show. Projects on the official Kling API only.",
    )
    mode = choice(
        Mode,
        required=False,
        help_text="std (720p, the default) or pro (1080p). Projects on the official Kling API only.",
    )


class JobFormSerializer(JobInputSerializer):
    image = serializers.FileField(
        required=False, help_text="Image to video: a JPEG, PNG or WebP file of at most 10 MB."
    )


WAIT_FOR_CREDITS_HELP = (
    "Queue even when the provider balance cannot pay for the jobs now: they wait until credits "
    "are added. Without it such a request is refused (402, `insufficient_credits`)."
)


class BatchInputSerializer(serializers.Serializer):
    # With many=True, DRF hands max_length to the list; the stubs know only the child's arguments.
    jobs = JobInputSerializer(many=True, allow_empty=False, max_length=BATCH_MAX_JOBS)  # type: ignore[call-arg]


class BatchCreateSerializer(BatchInputSerializer):
    wait_for_credits = serializers.BooleanField(default=False, help_text=WAIT_FOR_CREDITS_HELP)


class JobCreateSerializer(JobInputSerializer):
    wait_for_credits = serializers.BooleanField(default=False, help_text=WAIT_FOR_CREDITS_HELP)


class JobCreateFormSerializer(JobFormSerializer):
    wait_for_credits = serializers.BooleanField(default=False, help_text=WAIT_FOR_CREDITS_HELP)


def job_body(request: Request, *, creating: bool = False) -> JobInputSerializer:
    """The job body, read as multipart (with an image) or JSON, validated."""
    form = request.content_type.startswith("multipart/")
    if creating:
        serializer: type[JobInputSerializer] = (
            JobCreateFormSerializer if form else JobCreateSerializer
        )
    else:
        serializer = JobFormSerializer if form else JobInputSerializer
    body = serializer(data=request.data, context={"request": request})
    body.is_valid(raise_exception=True)
    return body


def require_editor_of(request: AuthenticatedRequest, items: list[dict[str, Any]]) -> None:
    for team_id in sorted({inputs["project"].team_id for inputs in items}):
        require_role(request.user, team_id, Role.EDITOR)


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None or key == "":
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise ValidationError(
            {"Idempotency-Key": ["Use 1 to 150 letters, digits and . _ : ~ - characters."]}
        )
    return key


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern, "maxLength": 150},
    OpenApiParameter.HEADER,
    description="Repeat a request with the same key to get its first answer instead of a second "
    "job; the same key with a different body answers 409.",
)


def job_data(request: Request, job: GenerationJob) -> dict[str, Any]:
    return JobSerializer(selectors.job_with_details(job), context={"request": request}).data


# --- Views -----------------------------------------------------------------------------------


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 moment, compared in UTC: any offset a client writes (ISO allows up to
    +23:59) is turned into UTC first, since PostgreSQL refuses offsets past 15:59."""

    def filter(self, qs: Any, value: Any) -> Any:
        if value is not None and value.tzinfo is not None:
            try:
                value = value.astimezone(datetime.UTC)
            except OverflowError:  # year 1 or 9999 pushed past the calendar's ends
                raise ValidationError({self.field_name: ["A value is out of range."]}) from None
        return super().filter(qs, value)


class JobFilter(django_filters.FilterSet):
    project = django_filters.NumberFilter(field_name="project_id")
    state = django_filters.MultipleChoiceFilter(choices=JobState.choices)
    kind = django_filters.ChoiceFilter(choices=Kind.choices)
    created_after = UtcDateTimeFilter(field_name="created", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created", lookup_expr="lt")
    has_asset = django_filters.BooleanFilter(field_name="asset", lookup_expr="isnull", exclude=True)

    class Meta:
        model = GenerationJob
        fields = ["project", "state", "kind"]


JOB_FILTER_PARAMETERS = [
    OpenApiParameter("project", OpenApiTypes.INT, description="Only this project's jobs."),
    OpenApiParameter(
        "state",
        {"type": "array", "items": {"type": "string", "enum": JobState.values}},
        explode=True,
        description="Only jobs in these states: repeat the parameter, or separate "
        "states with commas (`state=queued,submitting`).",
    ),
    OpenApiParameter("kind", {"type": "string", "enum": Kind.values}),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Created at or after."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Created before."),
    OpenApiParameter(
        "has_asset",
        OpenApiTypes.BOOL,
        description="Only jobs with (true) or without (false) a stored clip; a canceled job "
        "whose clip still came has one.",
    ),
]


class JobListApi(ApiView):
    parser_classes = [JSONParser, MultiPartParser]
    max_body_bytes = UPLOAD_MAX_BODY_BYTES

    @extend_schema(
        operation_id="jobs_list",
        parameters=[*JOB_FILTER_PARAMETERS, *PAGE_PARAMETERS],
        responses={200: page_of(JobSummarySerializer, "JobPage"), **error_responses(400, 404)},
        description="Your teams' jobs, newest first.",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        # `state=queued,submitting` and `state=queued&state=submitting` mean the same.
        params = request.query_params.copy()
        params.setlist("state", [s for v in params.getlist("state") for s in v.split(",") if s])
        jobs = JobFilter(params, queryset=selectors.job_list(user=request.user))
        if not jobs.is_valid():
            raise ValidationError(jobs.errors)
        return paginated_response(
            request,
            self,
            jobs.qs,
            ordering="-created",
            to_data=lambda rows: (
                JobSummarySerializer(rows, many=True, context={"request": request}).data
            ),
        )

    @extend_schema(
        operation_id="jobs_create",
        parameters=[IDEMPOTENCY_PARAMETER],
        request={
            "application/json": JobCreateSerializer,
            "multipart/form-data": JobCreateFormSerializer,
        },
        responses={
            201: JobSerializer,
            200: OpenApiResponse(JobSerializer, description="The job this Idempotency-Key made."),
            **error_responses(400, 402, 403, 409, 413, 415),
        },
        description="Validate, price and queue a job; it is submitted to the provider right after.",
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        key = idempotency_key(request)
        body = job_body(request, creating=True).validated_data
        inputs = job_inputs(body)
        require_editor_of(request, [inputs])
        job, created = services.job_create_once(
            by=request.user,
            idempotency_key=key,
            wait_for_credits=body["wait_for_credits"],
            **inputs,
        )
        return Response(
            job_data(request, job),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class JobBatchOutputSerializer(serializers.Serializer):
    jobs = JobSerializer(many=True)


class JobBatchApi(ApiView):
    @extend_schema(
        operation_id="jobs_batch_create",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=BatchCreateSerializer,
        responses={
            201: JobBatchOutputSerializer,
            200: OpenApiResponse(JobBatchOutputSerializer, description="The jobs this key made."),
            **error_responses(400, 402, 403, 409, 413, 415),
        },
        description=f"Up to {BATCH_MAX_JOBS} jobs, all validated and priced before any is saved: "
        "either all are created or none. Errors are keyed by the job's index: "
        '`{"jobs": {"3": {"prompt": [...]}}}`.',
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        key = idempotency_key(request)
        body = BatchCreateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        items = [job_inputs(item) for item in body.validated_data["jobs"]]
        require_editor_of(request, items)
        jobs, created = services.jobs_create_batch(
            by=request.user,
            items=items,
            idempotency_key=key,
            wait_for_credits=body.validated_data["wait_for_credits"],
        )
        data = {
            "jobs": JobSerializer(
                selectors.jobs_with_details(jobs), many=True, context={"request": request}
            ).data
        }
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _job(request: AuthenticatedRequest, job_id: str) -> GenerationJob:
    return found(selectors.job_get(user=request.user, job_id=job_id))


WAIT_MAX_SECONDS = 60
# Each waiter holds a server thread; past this many in one process, a request answers at once.
_waiters = threading.BoundedSemaphore(settings.API_MAX_WAITERS)


def _wait_seconds(request: Request) -> int:
    raw = request.query_params.get("wait")
    if raw in (None, ""):
        return 0
    if not (raw.isascii() and raw.isdigit()) or int(raw) > WAIT_MAX_SECONDS:
        raise ValidationError({"wait": [f"Give whole seconds from 0 to {WAIT_MAX_SECONDS}."]})
    return int(raw)


class JobDetailApi(ApiView):
    throttle_classes = [JobReadRateThrottle, TeamRateThrottle]

    @extend_schema(
        operation_id="jobs_retrieve",
        parameters=[
            id_parameter("job_id", "uuid"),
            OpenApiParameter(
                "wait",
                {"type": "integer", "minimum": 0, "maximum": WAIT_MAX_SECONDS},
                description="Answer as soon as the job is settled (succeeded, failed, canceled "
                "or needs attention) or after this many seconds, whichever comes first. A server "
                "busy with many waiters answers at once.",
            ),
        ],
        responses={200: JobSerializer, **error_responses(400, 404)},
    )
    def get(self, request: AuthenticatedRequest, job_id: str) -> Response:
        seconds = _wait_seconds(request)
        job = _job(request, job_id)
        if (
            seconds
            and job.state not in selectors.SETTLED_STATES
            and _waiters.acquire(blocking=False)
        ):
            try:
                job = found(selectors.job_wait(user=request.user, job_id=job.pk, seconds=seconds))
            finally:
                _waiters.release()
        return Response(JobSerializer(job, context={"request": request}).data)


class JobCancelApi(ApiView):
    @extend_schema(
        operation_id="jobs_cancel",
        parameters=[id_parameter("job_id", "uuid")],
        request=None,
        responses={200: JobSerializer, **error_responses(403, 404, 409)},
        description="Cancel a job. One the provider already has is canceled here only: if its "
        "clip still arrives it is stored and charged, as it was paid for.",
    )
    def post(self, request: AuthenticatedRequest, job_id: str) -> Response:
        job = _job(request, job_id)
        require_role(request.user, job.team_id, Role.EDITOR)
        if not job_cancel(job=job, by=request.user):
            job.refresh_from_db()
            if job.state == JobState.NEEDS_ATTENTION:
                raise Conflict(
                    "The job needs attention: whether the provider has it is unknown, so an "
                    "operator resolves it (gives up, adopts its task, or confirms it was never "
                    "accepted) instead of a cancel.",
                    code="needs_attention",
                )
            raise Conflict(f"The job has already ended ({job.state}).", code="job_ended")
        return Response(job_data(request, job))


class JobRetryApi(ApiView):
    @extend_schema(
        operation_id="jobs_retry",
        parameters=[id_parameter("job_id", "uuid")],
        request=None,
        responses={201: JobSerializer, **error_responses(400, 402, 403, 404, 409)},
        description="A new attempt of a failed, canceled or needs-attention job.",
    )
    def post(self, request: AuthenticatedRequest, job_id: str) -> Response:
        job = _job(request, job_id)
        require_role(request.user, job.team_id, Role.EDITOR)
        try:
            new = job_retry(job=job, by=request.user)
        except DjangoValidationError as exc:
            if "state" in getattr(exc, "error_dict", {}):
                raise Conflict(" ".join(exc.message_dict["state"]), code="not_retryable") from None
            raise
        return Response(job_data(request, new), status=status.HTTP_201_CREATED)


class _StoredFileApi(ApiView):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # Files are not rendered; only errors are, always as JSON, whatever the client accepts.
        return JSONRenderer(), "application/json"


FILE_ERRORS = error_responses(404, 416)


class JobVideoApi(_StoredFileApi):
    @extend_schema(
        operation_id="jobs_video",
        parameters=[
            id_parameter("job_id", "uuid"),
            OpenApiParameter(
                "Range",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="One byte range, e.g. `bytes=0-1023`.",
            ),
        ],
        responses={
            (200, "video/mp4"): OpenApiTypes.BINARY,
            (206, "video/mp4"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The range asked for."
            ),
            302: OpenApiResponse(description="On object storage: a signed, short-lived URL."),
            **FILE_ERRORS,
        },
        description="The stored MP4 clip of a succeeded job.",
    )
    def get(self, request: AuthenticatedRequest, job_id: str) -> Any:
        asset = getattr(_job(request, job_id), "asset", None)
        if asset is None:
            raise NotFound("The job has no video yet.")
        return stored_file_response(
            request, asset.file, content_type="video/mp4", etag=asset.sha256
        )


class JobPosterApi(_StoredFileApi):
    @extend_schema(
        operation_id="jobs_poster",
        parameters=[id_parameter("job_id", "uuid")],
        responses={
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (206, "image/jpeg"): OpenApiTypes.BINARY,
            302: OpenApiResponse(description="On object storage: a signed, short-lived URL."),
            **FILE_ERRORS,
        },
        description="A JPEG frame of the clip.",
    )
    def get(self, request: AuthenticatedRequest, job_id: str) -> Any:
        asset = getattr(_job(request, job_id), "asset", None)
        if asset is None or not asset.poster:
            raise NotFound("The job has no poster yet.")
        return stored_file_response(request, asset.poster, content_type="image/jpeg")


class ClipLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Works without a token until `expires_at`.")
    expires_at = serializers.DateTimeField()


class JobVideoUrlApi(ApiView):
    @extend_schema(
        operation_id="jobs_video_url",
        parameters=[id_parameter("job_id", "uuid")],
        responses={200: ClipLinkSerializer, **error_responses(404)},
        description="A short-lived link to the clip that needs no token, for handing it to "
        "another system (it supports Range requests).",
    )
    def get(self, request: AuthenticatedRequest, job_id: str) -> Response:
        job = _job(request, job_id)
        if getattr(job, "asset", None) is None:
            raise NotFound("The job has no video yet.")
        url, expires_at = clip_link(job)
        return Response({"url": request.build_absolute_uri(url), "expires_at": expires_at})
