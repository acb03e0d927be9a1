"""kie.ai Market API client for Kling 2.6 (text to video and image to video).

The provider's quirks this module absorbs, so nothing else has to:
- the JSON body's `code` is the truth, whatever the HTTP status (HTTP 200 with `code` 429 is a
  rate limit);
- the human message is under `msg` or `message`;
- `param` and `resultJson` arrive as JSON strings;
- the credits a task used are `consumeCredits` or `creditsConsumed`;
- a read timeout on createTask does not mean the task was not created.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from videos.providers.base import (
    IMAGE_TYPES,
    TEXT_TO_VIDEO,
    Action,
    CallbackMalformed,
    CallbackRejected,
    GenerationRequest,
    InvalidRequest,
    ProviderError,
    TaskState,
    TaskStatus,
    VideoProvider,
    callback_task_id,
    check_image_bytes,
    request_errors,
)
from videos.providers.http import retry_after_seconds, send, thread_session

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.kie.ai"
DEFAULT_UPLOAD_BASE_URL = "https://kieai.redpandaai.co"
TEXT_TO_VIDEO_MODEL = "kling-2.6/text-to-video"
IMAGE_TO_VIDEO_MODEL = "kling-2.6/image-to-video"

CREATE_TASK_PATH = "/api/v1/jobs/createTask"
RECORD_INFO_PATH = "/api/v1/jobs/recordInfo"
CREDIT_PATH = "/api/v1/chat/credit"
DOWNLOAD_URL_PATH = "/api/v1/common/download-url"
UPLOAD_PATH = "/api/file-stream-upload"

TIMESTAMP_HEADER = "x-webhook-timestamp"
SIGNATURE_HEADER = "x-webhook-signature"

PAUSE_CODES = frozenset({401, 402, 433})
# 505: a feature switched off for this request. It fails that job, not the account.
FAIL_CODES = frozenset({404, 422, 501, 505})
ALERT_CODES = frozenset({505})
RETRY_CODES = frozenset({429, 455})


def action_for_code(code: int) -> Action:
    """What a caller should do about a non-200 body `code` (the contract's table)."""
    if code in PAUSE_CODES:
        return Action.PAUSE
    if code in FAIL_CODES:
        return Action.FAIL
    if code in RETRY_CODES or code >= 500:
        return Action.RETRY
    return Action.FAIL


def build_payload(request: GenerationRequest, *, callback_url: str | None) -> dict[str, Any]:
    """The createTask body for a request that already passed validation."""
    payload: dict[str, Any]
    if request.kind == TEXT_TO_VIDEO:
        payload = {
            "model": TEXT_TO_VIDEO_MODEL,
            "input": {
                "prompt": request.prompt,
                "sound": request.sound,
                "aspect_ratio": request.aspect_ratio,
                "duration": str(request.duration),  # the API wants "5"/"10", not a number
            },
        }
    else:
        payload = {
            "model": IMAGE_TO_VIDEO_MODEL,
            "input": {
                "prompt": request.prompt,
                "image_urls": [request.image_url],
                "sound": request.sound,
                "duration": str(request.duration),
            },
        }
    if callback_url:
        payload["callBackUrl"] = callback_url
    return payload


def sign_callback(hmac_key: str, task_id: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key, taskId + "." + timestamp)), as the provider signs callbacks."""
    digest = hmac.new(hmac_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class KieProvider(VideoProvider):
    name = "kie"
    label = "kie.ai"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        upload_base_url: str = DEFAULT_UPLOAD_BASE_URL,
        hmac_key: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        upload_read_timeout: float = 120.0,
        max_callback_skew: float = 300.0,
        get_retries: int = 2,
        retry_pause: float = 0.25,
        upload_path: str = "reelforge/images",
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = api_key or ""
        self.base_url = base_url.rstrip("/")
        self.upload_base_url = upload_base_url.rstrip("/")
        self._hmac_key = hmac_key or None
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.upload_read_timeout = upload_read_timeout
        self.max_callback_skew = max_callback_skew
        self.get_retries = get_retries
        self.retry_pause = retry_pause
        self.upload_path = upload_path
        self._session = session or requests.Session()
        self._clock = clock

    @classmethod
    def from_settings(cls) -> KieProvider:
        """The client for the account the settings name; `config/settings.py` declares each value."""
        from django.conf import settings

        return cls(
            api_key=settings.KIE_API_KEY,
            base_url=settings.KIE_BASE_URL,
            upload_base_url=settings.KIE_UPLOAD_BASE_URL,
            hmac_key=settings.KIE_WEBHOOK_HMAC_KEY,
            connect_timeout=settings.KIE_CONNECT_TIMEOUT,
            read_timeout=settings.KIE_READ_TIMEOUT,
            max_callback_skew=settings.KIE_WEBHOOK_MAX_SKEW,
            session=thread_session(),
        )

    def __repr__(self) -> str:
        # The key never appears here, nor in any message this class builds.
        return f"KieProvider(base_url={self.base_url!r}, signed_callbacks={self._hmac_key is not None})"

    # --- the interface -------------------------------------------------------------------------

    def validate(self, request: GenerationRequest) -> None:
        errors = request_errors(request, provider=type(self))
        if errors:
            raise InvalidRequest(errors)

    def create_task(
        self, request: GenerationRequest, *, callback_url: str | None, reference: str | None = None
    ) -> str:
        self.validate(request)
        payload = build_payload(request, callback_url=callback_url)
        data = self._call(
            "POST",
            self.base_url + CREATE_TASK_PATH,
            endpoint="createTask",
            json_body=payload,
            may_have_acted=True,
        )
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            # Success without an id: the task may exist, and we cannot name it.
            raise ProviderError(
                "kie.ai createTask: success answer without a taskId",
                action=Action.UNKNOWN,
                code=200,
            )
        return task_id

    def get_task(self, task_id: str, *, kind: str | None = None) -> TaskStatus:
        data = self._call(
            "GET",
            self.base_url + RECORD_INFO_PATH,
            endpoint="recordInfo",
            params={"taskId": task_id},
            retries=self.get_retries,
        )
        if not isinstance(data, dict):
            raise ProviderError(
                "kie.ai recordInfo: answer without task data", action=Action.RETRY, code=200
            )
        try:
            return status_from_record(data, task_id=task_id)
        except ValueError as exc:
            raise ProviderError(
                f"kie.ai recordInfo: {exc}", action=Action.RETRY, code=200
            ) from None

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskStatus:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise CallbackMalformed("callback body is not JSON") from None
        except RecursionError:
            raise CallbackMalformed("callback body is nested too deeply") from None
        if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
            raise CallbackMalformed("callback body has no data object")
        data = document["data"]
        task_id = callback_task_id(data.get("taskId"))
        if task_id is None:
            raise CallbackMalformed("callback has no taskId")
        if self._hmac_key is not None:
            self._verify_signature(task_id, headers)
        try:
            code = _int_code(document.get("code"))
            return status_from_record(data, task_id=task_id, code=code, message=_message(document))
        except ValueError as exc:
            raise CallbackRejected(f"callback unreadable: {exc}") from None

    def credits_left(self) -> Decimal:
        data = self._call(
            "GET", self.base_url + CREDIT_PATH, endpoint="credit", retries=self.get_retries
        )
        credits = _decimal(data)
        if credits is None:
            raise ProviderError(
                "kie.ai credit: balance is not a number", action=Action.RETRY, code=200
            )
        return credits

    def upload_image(self, data: bytes, filename: str) -> str:
        mime = check_image_bytes(data)
        name = _safe_filename(filename, IMAGE_TYPES[mime])
        answer = self._call(
            "POST",
            self.upload_base_url + UPLOAD_PATH,
            endpoint="upload",
            files={"file": (name, data, mime)},
            form={"uploadPath": self.upload_path, "fileName": name},
            retries=self.get_retries,  # a repeated upload only leaves a spare file, at no cost
            read_timeout=self.upload_read_timeout,
        )
        url = answer.get("downloadUrl") if isinstance(answer, dict) else None
        if not isinstance(url, str) or not url:
            raise ProviderError(
                "kie.ai upload: answer without downloadUrl", action=Action.RETRY, code=200
            )
        return url

    def fresh_download_url(self, url: str) -> str:
        data = self._call(
            "POST",
            self.base_url + DOWNLOAD_URL_PATH,
            endpoint="download-url",
            json_body={"url": url},
            retries=self.get_retries,
        )
        if isinstance(data, dict):
            data = data.get("downloadUrl") or data.get("url")
        if not isinstance(data, str) or not data:
            raise ProviderError(
                "kie.ai download-url: answer without a URL", action=Action.RETRY, code=200
            )
        return data

    # --- HTTP ----------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        files: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        retries: int = 0,
        may_have_acted: bool = False,
        read_timeout: float | None = None,
    ) -> Any:
        """Send one request and return the answer's `data` when its body `code` is 200.

        `may_have_acted` marks a call the provider could have carried out even if no answer came
        back (createTask): such a call is never repeated, and a lost answer is `Action.UNKNOWN`.
        `retries` repeats the call on connection errors only.
        """
        if not self._api_key:
            raise ProviderError(
                f"kie.ai {endpoint}: no API key configured", action=Action.PAUSE, code=401
            )
        started = time.monotonic()
        response = send(
            self._session,
            method,
            url,
            what=f"kie.ai {endpoint}",
            timeout=(self.connect_timeout, read_timeout or self.read_timeout),
            may_have_acted=may_have_acted,
            retries=retries,
            retry_pause=self.retry_pause,
            params=params,
            json=json_body,
            files=files,
            data=form,
            headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
        )
        elapsed_ms = (time.monotonic() - started) * 1000
        return self._read_answer(
            response, endpoint=endpoint, may_have_acted=may_have_acted, elapsed_ms=elapsed_ms
        )

    def _read_answer(
        self, response: requests.Response, *, endpoint: str, may_have_acted: bool, elapsed_ms: float
    ) -> Any:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), self._clock)
        try:
            body = response.json()
            code = _int_code(body.get("code")) if isinstance(body, dict) else None
        except ValueError:
            body, code = None, None
        if code is None:
            return self._unreadable(
                response, endpoint=endpoint, may_have_acted=may_have_acted, retry_after=retry_after
            )
        logger.debug(
            "kie.ai %s: HTTP %s, code %s, %.0f ms", endpoint, response.status_code, code, elapsed_ms
        )
        if code == 200:
            return body.get("data")
        action = action_for_code(code)
        message = self._scrub(_message(body) or "no message")
        logger.warning("kie.ai %s: code %s (%s): %s", endpoint, code, action.value, message)
        raise ProviderError(
            f"kie.ai {endpoint}: code {code}: {message}",
            action=action,
            code=code,
            retry_after=retry_after if action is Action.RETRY else None,
            alert=code in ALERT_CODES,
        )

    def _unreadable(
        self,
        response: requests.Response,
        *,
        endpoint: str,
        may_have_acted: bool,
        retry_after: float | None,
    ) -> Any:
        """An answer without a readable body `code`: judge by the HTTP status alone."""
        status = response.status_code
        logger.warning("kie.ai %s: unreadable answer, HTTP %s", endpoint, status)
        # A 2xx we cannot read, or a 5xx from something in front of the provider (a proxy that may
        # have forwarded the request), may hide a created task: never send it again blindly.
        if may_have_acted and (status < 400 or status >= 500):
            raise ProviderError(
                f"kie.ai {endpoint}: unreadable answer (HTTP {status}); the task may exist",
                action=Action.UNKNOWN,
                code=status,
            )
        action = Action.RETRY if status < 400 else action_for_code(status)
        raise ProviderError(
            f"kie.ai {endpoint}: unreadable answer (HTTP {status})",
            action=action,
            code=status if status >= 400 else None,
            retry_after=retry_after if action is Action.RETRY else None,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    # --- callbacks -----------------------------------------------------------------------------

    def _verify_signature(self, task_id: str, headers: Mapping[str, str]) -> None:
        assert self._hmac_key is not None
        normalized = {_header_name(name): value for name, value in headers.items()}
        timestamp = normalized.get(TIMESTAMP_HEADER)
        signature = normalized.get(SIGNATURE_HEADER)
        if not timestamp or not signature:
            raise CallbackRejected("callback is not signed")
        try:
            sent_at = int(timestamp.strip())
        except ValueError:
            raise CallbackRejected("callback timestamp is not a Unix time") from None
        if abs(self._clock() - sent_at) > self.max_callback_skew:
            raise CallbackRejected("callback timestamp is stale")
        expected = sign_callback(self._hmac_key, task_id, timestamp.strip())
        if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
            raise CallbackRejected("callback signature does not match")


def status_from_record(
    data: Mapping[str, Any], *, task_id: str, code: int | None = None, message: str | None = None
) -> TaskStatus:
    """Read a recordInfo `data` object or a callback's `data` into a `TaskStatus`.

    `code` and `message` are the callback's top-level fields: they decide the state when `data`
    has none (501 means failed). Raises ValueError for a record that cannot be trusted: unknown
    state, unreadable resultJson, or success without a result URL.
    """
    raw_state = data.get("state")
    if raw_state in (None, ""):
        if code is None:
            raise ValueError("record has no state")
        state = TaskState.SUCCESS if code == 200 else TaskState.FAIL
    else:
        try:
            state = TaskState(str(raw_state).lower())
        except ValueError:
            raise ValueError(f"unknown state {raw_state!r}") from None

    result = _json_field(data.get("resultJson"), "resultJson")
    urls = result.get("resultUrls") or []
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise ValueError("resultUrls is not a list of URLs")
    if state is TaskState.SUCCESS and not urls:
        raise ValueError("success without result URLs")

    fail_code = data.get("failCode")
    fail_code = None if fail_code in (None, "") else str(fail_code)
    fail_message = data.get("failMsg") or None
    if state is TaskState.FAIL:
        if fail_code is None and code not in (None, 200):
            fail_code = str(code)
        fail_message = fail_message or message or None

    consumed = data.get("consumeCredits")
    if consumed is None:
        consumed = data.get("creditsConsumed")
    return TaskStatus(
        task_id=str(data.get("taskId") or task_id),
        state=state,
        result_urls=list(urls),
        fail_code=fail_code,
        fail_message=str(fail_message) if fail_message is not None else None,
        credits_consumed=_decimal(consumed),
        raw=dict(data),
        remaining_credits=_decimal(data.get("remainedCredits")),
        model=data.get("model") or None,
        completed_at=_from_millis(data.get("completeTime")),
        callback_url=str(decoded_param(data).get("callBackUrl") or "") or None,
    )


def decoded_param(data: Mapping[str, Any]) -> dict[str, Any]:
    """The createTask body the record was made from (`param`, a JSON string on the wire)."""
    return _json_field(data.get("param"), "param")


def _json_field(value: Any, name: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            raise ValueError(f"{name} is not JSON") from None
        except RecursionError:
            raise ValueError(f"{name} is nested too deeply") from None
        if isinstance(decoded, dict):
            return decoded
    raise ValueError(f"{name} is not a JSON object")


def _int_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _message(body: Mapping[str, Any]) -> str:
    message = body.get("msg")
    if message in (None, ""):
        message = body.get("message")
    return "" if message is None else str(message)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    # JSON as Python reads it has NaN and Infinity: no amount of credits.
    return number if number.is_finite() else None


def _from_millis(value: Any) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None  # NaN, or past any calendar: no time we can use, as if none were given


def _header_name(name: str) -> str:
    # Accepts both `request.headers` names and WSGI `META` keys (HTTP_X_WEBHOOK_SIGNATURE).
    name = name.lower().replace("_", "-")
    return name[5:] if name.startswith("http-") else name


def _safe_filename(filename: str, extension: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
    stem = stem.rsplit(".", 1)[0].strip(".-")[:80] or "image"
    return f"{stem}.{extension}"
