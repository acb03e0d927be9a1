"""Serializers shared by several operations: references to the user's objects, and the job,
project and prompt as the API shows them. Operation-specific ones live beside their view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.reverse import reverse

from videos.models import (
    PROMPT_MAX_LENGTH,
    AspectRatio,
    Duration,
    GenerationJob,
    JobState,
    Kind,
)
from videos.selectors import MAX_ID


class Digits(TypedDict):
    """A DecimalField's size, passed as keyword arguments (`**MONEY`)."""

    max_digits: int
    decimal_places: int


MONEY: Digits = {"max_digits": 14, "decimal_places": 4}


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class TeamObjectField(serializers.Field):
    """A reference by id to one of the user's teams' objects; `lookup(user, id)` finds it.

    Another team's object and a missing one get the same answer, so ids reveal nothing.
    """

    default_error_messages = {
        "invalid": "A valid id is required.",
        "not_found": "No {name} with this id in your teams.",
    }

    def __init__(self, *, lookup: Callable[..., Any], name: str, **kwargs: Any) -> None:
        self.lookup = lookup
        self.name = name
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("invalid")
        text = str(data).strip()
        # isdigit() alone admits digits int() cannot read, such as "²".
        if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_ID:
            self.fail("not_found", name=self.name)
        found = self.lookup(self.context["request"].user, int(text))
        if found is None:
            self.fail("not_found", name=self.name)
        return found

    def to_representation(self, value: Any) -> int:
        return value.pk


class OptionalBooleanField(serializers.BooleanField):
    # In a form an absent checkbox means "false"; here an absent field means "the default".
    default_empty_html = empty


def choice(choices: Any, **kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=choices.choices, **kwargs)


def prompt_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=PROMPT_MAX_LENGTH, trim_whitespace=False, **kwargs)


# --- Jobs ------------------------------------------------------------------------------------


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The provider's error code, or the platform's.")
    message = serializers.CharField()


class JobEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="created")
    from_state = serializers.CharField(help_text="Empty for the job's first event.")
    to_state = choice(JobState)
    reason = serializers.CharField()


class AssetSerializer(serializers.Serializer):
    url = serializers.SerializerMethodField(help_text="Download the clip (supports Range).")
    poster_url = serializers.SerializerMethodField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    duration_s = serializers.FloatField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    has_audio = serializers.BooleanField()

    def get_url(self, asset: Any) -> str:
        return reverse("api:job-video", args=[asset.job_id], request=self.context.get("request"))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_poster_url(self, asset: Any) -> str | None:
        if not asset.poster:
            return None
        return reverse("api:job-poster", args=[asset.job_id], request=self.context.get("request"))


class JobSummarySerializer(serializers.Serializer):
    """A job in a list."""

    id = serializers.UUIDField()
    project = serializers.IntegerField(source="project_id")
    kind = choice(Kind)
    prompt = serializers.CharField(source="prompt_text")
    prompt_version = serializers.IntegerField(source="prompt_version_id", allow_null=True)
    duration = serializers.ChoiceField(choices=Duration.choices)
    aspect_ratio = serializers.SerializerMethodField(
        help_text="What was sent; null for image to video, whose image decides."
    )
    sound = serializers.BooleanField()
    negative_prompt = serializers.CharField(help_text="Empty when none was given.")
    mode = serializers.CharField(help_text="std or pro; empty for the provider's default.")
    provider = serializers.CharField(help_text="The provider that makes it: kie or kling.")
    image_url = serializers.SerializerMethodField(help_text="The image URL the job was given.")
    image_uploaded = serializers.SerializerMethodField()
    state = choice(JobState)
    state_reason = serializers.CharField()
    error = serializers.SerializerMethodField()
    estimated_cost_usd = serializers.DecimalField(**MONEY)
    cost_usd = serializers.DecimalField(
        **MONEY, allow_null=True, default=None, help_text="What the clip was charged, once it was."
    )
    asset = AssetSerializer(allow_null=True, help_text="The stored clip, once succeeded.")
    idempotency_key = serializers.CharField(allow_null=True)
    retry_of = serializers.UUIDField(source="retry_of_id", allow_null=True)
    retried_as = serializers.UUIDField(
        source="retried_as_id",
        allow_null=True,
        default=None,
        help_text="The newer attempt made of this job, if it was retried.",
    )
    attempt = serializers.IntegerField()
    charged_after_cancel = serializers.SerializerMethodField(
        help_text="Canceled after it was sent, yet its clip came and was paid for: `asset` and "
        "`cost_usd` say what was stored and charged."
    )
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.ChoiceField(choices=AspectRatio.choices, allow_null=True))
    def get_aspect_ratio(self, job: GenerationJob) -> str | None:
        return job.aspect_ratio or None

    def get_charged_after_cancel(self, job: GenerationJob) -> bool:
        return job.state == JobState.CANCELED and getattr(job, "cost_usd", None) is not None

    def get_image_url(self, job: GenerationJob) -> str:
        # After an upload the pipeline keeps the provider's copy here: that is not the client's.
        return "" if job.source_image else job.source_image_url

    def get_image_uploaded(self, job: GenerationJob) -> bool:
        return bool(job.source_image)

    @extend_schema_field(JobErrorSerializer(allow_null=True))
    def get_error(self, job: GenerationJob) -> dict[str, str] | None:
        if job.state not in (JobState.FAILED, JobState.NEEDS_ATTENTION):
            return None
        return {
            "code": job.provider_error_code or job.state,
            "message": job.provider_error_message or job.state_reason,
        }


class JobSerializer(JobSummarySerializer):
    """A job in full, with its history."""

    events = JobEventSerializer(many=True, source="events.all")
