"""Simulated generation tasks: what the provider accepts, what it charges, how it reports a task."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

TEXT_TO_VIDEO_MODEL = "kling-2.6/text-to-video"
IMAGE_TO_VIDEO_MODEL = "kling-2.6/image-to-video"

# Credits per clip: (duration, sound) -> credits, as the provider reports them.
PRICES = {(5, False): 55, (5, True): 110, (10, False): 110, (10, True): 220}

_INPUT_FIELDS = {
    TEXT_TO_VIDEO_MODEL: {"prompt", "sound", "aspect_ratio", "duration"},
    IMAGE_TO_VIDEO_MODEL: {"prompt", "image_urls", "sound", "duration"},
}


def create_request_error(body: Any) -> str | None:
    """Why a createTask body would be refused with code 422, or None when it is valid.

    Stricter than the provider may be (unknown input fields are refused too), so a client that
    drifts from the documented shape fails loudly here rather than quietly in production.
    """
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    model = body.get("model")
    if model not in _INPUT_FIELDS:
        return f"Unsupported model: {model!r}"
    callback = body.get("callBackUrl")
    if callback is not None and (
        not isinstance(callback, str) or not callback.startswith(("http://", "https://"))
    ):
        return "callBackUrl must be an http(s) URL"
    task_input = body.get("input")
    if not isinstance(task_input, dict):
        return "input is required"
    expected = _INPUT_FIELDS[model]
    missing = expected - set(task_input)
    if missing:
        return f"input is missing {', '.join(sorted(missing))}"
    unexpected = set(task_input) - expected
    if unexpected:
        return f"input does not accept {', '.join(sorted(unexpected))}"
    prompt = task_input["prompt"]
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= 1000:
        return "prompt must be a string of 1 to 1000 characters"
    if not isinstance(task_input["sound"], bool):
        return "sound must be a boolean"
    if task_input["duration"] not in ("5", "10"):  # a string: the number 5 is refused
        return 'duration must be "5" or "10"'
    if model == TEXT_TO_VIDEO_MODEL and task_input["aspect_ratio"] not in ("1:1", "16:9", "9:16"):
        return 'aspect_ratio must be "1:1", "16:9" or "9:16"'
    if model == IMAGE_TO_VIDEO_MODEL:
        urls = task_input["image_urls"]
        if (
            not isinstance(urls, list)
            or len(urls) != 1
            or not isinstance(urls[0], str)
            or not urls[0].startswith(("http://", "https://"))
        ):
            return "image_urls must be a list of one http(s) URL"
    return None


def price_of(task_input: dict[str, Any]) -> int:
    return PRICES[(int(task_input["duration"]), task_input["sound"])]


def _millis(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


@dataclass
class SimTask:
    task_id: str
    body: dict[str, Any]  # the createTask body, echoed back as `param`
    price: int
    created_at: float = field(default_factory=time.time)
    created_monotonic: float = field(default_factory=time.monotonic)
    will_fail: bool = False  # decided at creation by the generation_failure fault
    video_key: str | None = None
    final_state: str | None = None  # "success" | "fail" once finished
    result_url: str | None = None
    fail_code: str | None = None
    fail_message: str | None = None
    completed_at: float | None = None
    remaining_credits: int | None = None  # the balance when the task ended
    dialect: str = "kie"  # "kling": made through the official Kling API's routes
    external_task_id: str | None = None  # Kling: the caller's own id, unique per account
    image_data: bytes | None = field(default=None, repr=False)  # Kling: an inline image

    @property
    def model(self) -> str:
        return self.body["model"]

    @property
    def input(self) -> dict[str, Any]:
        return self.body["input"]

    @property
    def callback_url(self) -> str | None:
        return self.body.get("callBackUrl")

    def state(self, task_seconds: float, now_monotonic: float | None = None) -> str:
        if self.final_state is not None:
            return self.final_state
        now_monotonic = time.monotonic() if now_monotonic is None else now_monotonic
        progress = (
            (now_monotonic - self.created_monotonic) / task_seconds if task_seconds > 0 else 1.0
        )
        if progress < 0.1:
            return "waiting"
        if progress < 0.3:
            return "queuing"
        return "generating"

    def record(self, task_seconds: float) -> dict[str, Any]:
        """recordInfo's `data`: `param` and `resultJson` are JSON strings, times Unix ms."""
        finished = self.completed_at is not None
        failed = self.final_state == "fail"  # a doomed task looks healthy until it ends
        return {
            "taskId": self.task_id,
            "model": self.model,
            "state": self.state(task_seconds),
            "param": json.dumps(self.body, ensure_ascii=False),
            "resultJson": json.dumps({"resultUrls": [self.result_url]}) if self.result_url else "",
            "failCode": (self.fail_code or "") if failed else "",
            "failMsg": (self.fail_message or "") if failed else "",
            "costTime": (
                _millis(self.completed_at - self.created_at)
                if self.completed_at is not None
                else None
            ),
            "createTime": _millis(self.created_at),
            "updateTime": _millis(self.completed_at if finished else time.time()),
            "completeTime": _millis(self.completed_at),
        }
