"""The one interface every video provider implements.

A provider turns a validated `GenerationRequest` into a task at the provider, reports a task's
status, reads completion callbacks, and says how many credits are left. Every failure is a
`ProviderError` whose `action` tells the caller what to do next, so the pipeline decides from one
field instead of a zoo of exception types.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from PIL import Image, UnidentifiedImageError

TEXT_TO_VIDEO = "text_to_video"
IMAGE_TO_VIDEO = "image_to_video"
KINDS = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO)
DURATIONS = (5, 10)
ASPECT_RATIOS = ("1:1", "16:9", "9:16")
PROMPT_MAX_CHARS = 1000
NEGATIVE_PROMPT_MAX_CHARS = 2500
MODES = ("std", "pro")  # the official Kling API: 720p or 1080p
IMAGE_MAX_BYTES = 10 * 1024 * 1024
# A few bytes of PNG can declare 20000 x 20000 pixels (1.6 GB to decode): whoever opens it next,
# a thumbnailer or the provider, must not be handed a decompression bomb. 8K is far above any
# frame the models render.
IMAGE_MAX_PIXELS = 8192 * 8192

# Sniffed from the bytes: a name or a declared content type proves nothing.
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class Action(enum.Enum):
    RETRY = "retry"  # transient: try again later (after `retry_after` seconds when given)
    PAUSE = "pause"  # account-wide (bad key, no credits, sub-key limit): stop all submissions
    FAIL = "fail"  # this request can never succeed: fail the job permanently
    UNKNOWN = "unknown"  # the provider may or may not have acted (e.g. read timeout on create)


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        action: Action,
        code: int | None = None,
        retry_after: float | None = None,
        alert: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.action = action
        self.code = code
        self.retry_after = retry_after
        # Operators must hear of it even though only one job is affected (a feature switched off).
        self.alert = alert

    def __repr__(self) -> str:
        return f"ProviderError({self.message!r}, action={self.action.value}, code={self.code})"


class CallbackRejected(Exception):
    """A callback that must change nothing: bad signature, stale timestamp, unparseable body."""


class CallbackMalformed(CallbackRejected):
    """A callback body that cannot be read at all (not JSON, nested too deeply, no task)."""


class InvalidRequest(ValueError):
    """Input refused before anything reaches the provider.

    `errors` maps a field name ("prompt", "duration", "aspect_ratio", "image", ...) to a message a
    person can read, so an API or a form can show each message beside its field.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = dict(errors)


# Not a StrEnum, whose str() is the bare value: str() and f-strings keep reading "TaskState.X".
class TaskState(str, enum.Enum):  # noqa: UP042
    WAITING = "waiting"
    QUEUING = "queuing"
    GENERATING = "generating"
    SUCCESS = "success"
    FAIL = "fail"

    @property
    def is_final(self) -> bool:
        return self in (TaskState.SUCCESS, TaskState.FAIL)


@dataclass(frozen=True)
class GenerationRequest:
    kind: str  # "text_to_video" | "image_to_video"
    prompt: str
    duration: int  # 5 | 10
    sound: bool
    aspect_ratio: str | None = None  # text to video only
    image_url: str | None = None  # image to video only
    # Options only some providers take; empty means "not asked for".
    negative_prompt: str = ""
    mode: str = ""
    # Image to video: the image itself, for a provider that takes it inline instead of a URL.
    image_data: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    state: TaskState
    result_urls: list[str] = field(default_factory=list)
    fail_code: str | None = None
    fail_message: str | None = None
    credits_consumed: Decimal | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    remaining_credits: Decimal | None = None  # only callbacks report it
    model: str | None = None
    completed_at: dt.datetime | None = None  # UTC
    callback_url: str | None = None  # the callBackUrl the task was created with, when reported
    external_task_id: str | None = None  # the caller's own id for the task, when reported


def callback_task_id(value: Any) -> str | None:
    """A callback's task id, or None when it is not one: not a string, empty, or not writable as
    UTF-8 (JSON's escapes can spell a lone surrogate, "\\ud800", that no hash or database takes).
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    return value


def check_image_bytes(data: bytes) -> str:
    """Return the image's mime type ("image/jpeg", "image/png" or "image/webp").

    Raises `InvalidRequest({"image": ...})` when the bytes are empty, larger than 10 MB, not one
    of those three formats (judged from the file's signature, not its name), damaged, or
    declaring more than IMAGE_MAX_PIXELS (a decompression bomb).
    """
    if not data:
        raise InvalidRequest({"image": "The image file is empty."})
    if len(data) > IMAGE_MAX_BYTES:
        raise InvalidRequest({"image": "Image must be at most 10 MB."})
    if data.startswith(b"\xff\xd8\xff"):
        mime = "image/jpeg"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime = "image/png"
    elif len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    else:
        raise InvalidRequest({"image": "Image must be a JPEG, PNG or WebP file."})
    _check_image_size(data)
    return mime


def _check_image_size(data: bytes) -> None:
    """Refuse an image whose header cannot be read or declares more than IMAGE_MAX_PIXELS.

    Only the header is read: the pixels are never decoded here.
    """
    too_large = f"Image must be at most {IMAGE_MAX_PIXELS // 1_000_000} megapixels."
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise InvalidRequest({"image": too_large}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidRequest({"image": "The image file is damaged and cannot be read."}) from None
    if width * height > IMAGE_MAX_PIXELS:
        raise InvalidRequest({"image": too_large})


# How a refusal names each job option a provider may not take (see `VideoProvider.job_options`).
OPTION_REFUSALS = {
    "negative_prompt": "takes no negative prompt; a project on the official Kling API can use one",
    "mode": "takes no mode (std or pro); a project on the official Kling API can choose one",
}


def request_errors(request: GenerationRequest, *, provider: type[VideoProvider]) -> dict[str, str]:
    """The Kling 2.6 input rules shared by every provider that serves that model, and the
    options `provider` does not take.

    Returns field -> message, empty when the request is valid.
    """
    errors: dict[str, str] = {
        name: f"{provider.label} {refusal}."
        for name, refusal in OPTION_REFUSALS.items()
        if getattr(request, name) and name not in provider.job_options
    }
    if request.kind not in KINDS:
        errors["kind"] = "Choose text to video or image to video."
    prompt = request.prompt
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= PROMPT_MAX_CHARS:
        errors["prompt"] = f"Prompt must be 1 to {PROMPT_MAX_CHARS} characters."
    elif not prompt.strip():
        errors["prompt"] = "Prompt must not be blank."
    # bool is an int subclass: True must not pass for a duration.
    if isinstance(request.duration, bool) or request.duration not in DURATIONS:
        errors["duration"] = "Duration must be 5 or 10 seconds."
    if not isinstance(request.sound, bool):
        errors["sound"] = "Sound must be on or off."
    if request.kind == TEXT_TO_VIDEO:
        if request.aspect_ratio not in ASPECT_RATIOS:
            errors["aspect_ratio"] = "Aspect ratio must be 1:1, 16:9 or 9:16."
        if request.image_url is not None:
            errors["image"] = "Text to video takes no image; choose image to video to animate one."
    elif request.kind == IMAGE_TO_VIDEO:
        if request.aspect_ratio is not None:
            errors["aspect_ratio"] = "Image to video takes its aspect ratio from the image."
        url = request.image_url
        if request.image_data is None and (
            not isinstance(url, str) or not url.startswith(("https://", "http://"))
        ):
            errors["image"] = "Image to video needs an image: upload one or give its URL."
    return errors


class VideoProvider(abc.ABC):
    """One provider account. Methods raise `ProviderError` for anything the provider refused."""

    name: ClassVar[str]
    label: ClassVar[str]  # for people: "kie.ai", "Kling API"
    # Whether `find_task` can name the task made from a createTask whose answer was lost.
    finds_tasks_by_reference: ClassVar[bool] = False
    # Whether image to video takes the image's bytes (`GenerationRequest.image_data`), so
    # nothing needs uploading first.
    takes_inline_images: ClassVar[bool] = False
    # Job options beyond the common ones that this provider takes (of OPTION_REFUSALS' names);
    # the doors offer only these, and `request_errors` refuses the others.
    job_options: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    @abc.abstractmethod
    def from_settings(cls) -> VideoProvider:
        """A provider configured from Django settings."""

    @abc.abstractmethod
    def validate(self, request: GenerationRequest) -> None:
        """Raise `InvalidRequest` when the provider would refuse `request`."""

    @abc.abstractmethod
    def create_task(
        self, request: GenerationRequest, *, callback_url: str | None, reference: str | None = None
    ) -> str:
        """Validate, submit, and return the provider's task id.

        `reference` is the caller's own id for the task (the job's id); a provider that
        `finds_tasks_by_reference` records it with the task.
        `ProviderError` with `Action.UNKNOWN` means the task may exist at the provider even though
        no id came back: never resubmit such a request automatically, it could be paid twice.
        """

    @abc.abstractmethod
    def get_task(self, task_id: str, *, kind: str | None = None) -> TaskStatus:
        """The task's current status. `kind` is the job's, for a provider whose query depends
        on it; without it such a provider asks for each kind in turn."""

    def find_task(self, reference: str, *, kind: str) -> TaskStatus | None:
        """The task created with `reference`, or None when the provider has none.

        Only for a provider that `finds_tasks_by_reference`; raises `ProviderError` when the
        provider cannot say (then nothing is known either way).
        """
        raise NotImplementedError(f"{self.name} cannot find tasks by reference")

    @abc.abstractmethod
    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskStatus:
        """Authenticate and read a completion callback; raise `CallbackRejected` if it must be ignored."""

    @abc.abstractmethod
    def credits_left(self) -> Decimal | None:
        """The account's credit balance; None when the provider reports none (nothing is then
        held for credits: the provider's own refusal pauses submissions)."""

    @abc.abstractmethod
    def upload_image(self, data: bytes, filename: str) -> str:
        """Make an image fetchable by the provider; return its public URL.

        Raises `InvalidRequest({"image": ...})` before any upload when the bytes are not an
        acceptable image.
        """

    @abc.abstractmethod
    def fresh_download_url(self, url: str) -> str:
        """A fresh, short-lived download link for a result URL the provider gave earlier."""
