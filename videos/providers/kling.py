"""The official Kling API client for Kling 2.6 (text to video and image to video).

What sets it apart from kie.ai, and what this module absorbs:
- auth is a short-lived JWT (HS256) signed with the account's secret key, re-made before it
  expires and once more when the server says it has (clocks drift);
- answers are `{code, message, request_id, data}` with `code` 0 for success, and the HTTP status
  is meaningful too (401 auth, 429 account or rate, 400 input, 5xx server);
- the query path depends on the task's kind (`/v1/videos/text2video/<id>` or `/image2video/`);
- a task carries the caller's `external_task_id` (the job's id), so a createTask whose answer
  was lost can be found again instead of being left for a person to resolve.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import jwt
import requests

from videos.providers.base import (
    IMAGE_TO_VIDEO,
    MODES,
    NEGATIVE_PROMPT_MAX_CHARS,
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

DEFAULT_BASE_URL = "https://api-singapore.klingai.com"
DEFAULT_MODEL_NAME = "kling-v2-6"
PATHS = {TEXT_TO_VIDEO: "/v1/videos/text2video", IMAGE_TO_VIDEO: "/v1/videos/image2video"}

TOKEN_LIFETIME_SECONDS = 1800
TOKEN_NOT_BEFORE_SKEW = 5
# A token is re-made this long before it expires, so none expires in flight.
TOKEN_REFRESH_MARGIN = 300

EXPIRED_TOKEN_CODES = frozenset({1003, 1004})  # not yet valid / expired: our clock, not the key
TASK_NOT_FOUND_CODE = 1203
RETRY_CODES = frozenset({1302, 1303})  # rate and concurrency limits
FAIL_CODES = frozenset({1200, 1201, 1202, 1203, 1300, 1301})
STATES = {
    "submitted": TaskState.WAITING,
    "processing": TaskState.GENERATING,
    "succeed": TaskState.SUCCESS,
    "failed": TaskState.FAIL,
}


def action_for(code: int | None, http_status: int) -> Action:
    """What a caller should do about a refused request (the error table of the contract)."""
    if code in RETRY_CODES or (code is not None and 5000 <= code < 6000):
        return Action.RETRY
    if code in FAIL_CODES:
        return Action.FAIL
    # 1000-1004 (key), 1100-1103 (account, arrears, resource pack), 1304 (IP allow-list).
    if code is not None and 1000 <= code < 1400:
        return Action.PAUSE
    if http_status >= 500:
        return Action.RETRY
    if http_status in (401, 403):
        return Action.PAUSE
    return Action.FAIL


class TokenSigner:
    """The account's bearer token, re-made when it is near its expiry.

    Shared by every client of one account in the process (see `_signer_for`): clients are made
    per call, the token need not be.
    """

    def __init__(self, access_key: str, secret_key: str, clock: Callable[[], float]) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires_at - TOKEN_REFRESH_MARGIN:
                self._expires_at = int(now) + TOKEN_LIFETIME_SECONDS
                self._token = jwt.encode(
                    {
                        "iss": self._access_key,
                        "exp": self._expires_at,
                        "nbf": int(now) - TOKEN_NOT_BEFORE_SKEW,
                    },
                    self._secret_key,
                    algorithm="HS256",
                    headers={"typ": "JWT"},
                )
            return self._token

    def discard(self, token: str) -> None:
        """Forget `token` (the server refused it as expired) so the next call makes another."""
        with self._lock:
            if self._token == token:
                self._token = None


_signers: dict[tuple[str, str, int], TokenSigner] = {}
_signers_lock = threading.Lock()


def _signer_for(access_key: str, secret_key: str, clock: Callable[[], float]) -> TokenSigner:
    key = (access_key, secret_key, id(clock))
    with _signers_lock:
        signer = _signers.get(key)
        if signer is None:
            signer = _signers[key] = TokenSigner(access_key, secret_key, clock)
        return signer


def build_payload(
    request: GenerationRequest, *, model_name: str, callback_url: str | None, reference: str | None
) -> dict[str, Any]:
    """The create body for a request that already passed validation."""
    payload: dict[str, Any] = {
        "model_name": model_name,
        "prompt": request.prompt,
        "duration": str(request.duration),
        "mode": request.mode or "std",
        "sound": "on" if request.sound else "off",
    }
    if request.negative_prompt:
        payload["negative_prompt"] = request.negative_prompt
    if request.kind == TEXT_TO_VIDEO:
        payload["aspect_ratio"] = request.aspect_ratio
    elif request.image_data is not None:
        payload["image"] = base64.b64encode(request.image_data).decode("ascii")  # bare, no prefix
    else:
        payload["image"] = request.image_url
    if callback_url:
        payload["callback_url"] = callback_url
    if reference:
        payload["external_task_id"] = reference
    return payload


class KlingProvider(VideoProvider):
    name = "kling"
    label = "Kling API"
    finds_tasks_by_reference = True
    takes_inline_images = True
    job_options = frozenset({"negative_prompt", "mode"})

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model_name: str = DEFAULT_MODEL_NAME,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        get_retries: int = 2,
        retry_pause: float = 0.25,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._access_key = access_key or ""
        self._secret_key = secret_key or ""
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.get_retries = get_retries
        self.retry_pause = retry_pause
        self._session = session or requests.Session()
        self._signer = _signer_for(self._access_key, self._secret_key, clock)

    @classmethod
    def from_settings(cls) -> KlingProvider:
        from django.conf import settings

        return cls(
            access_key=settings.KLING_ACCESS_KEY,
            secret_key=settings.KLING_SECRET_KEY,
            base_url=settings.KLING_BASE_URL,
            model_name=settings.KLING_MODEL_NAME,
            connect_timeout=settings.KIE_CONNECT_TIMEOUT,
            read_timeout=settings.KIE_READ_TIMEOUT,
            session=thread_session(),
        )

    def __repr__(self) -> str:
        # Neither key appears here, nor in any message this class builds.
        return f"KlingProvider(base_url={self.base_url!r}, model_name={self.model_name!r})"

    # --- the interface -------------------------------------------------------------------------

    def validate(self, request: GenerationRequest) -> None:
        errors = request_errors(request, provider=type(self))
        if len(request.negative_prompt or "") > NEGATIVE_PROMPT_MAX_CHARS:
            errors["negative_prompt"] = (
                f"Negative prompt must be at most {NEGATIVE_PROMPT_MAX_CHARS} characters."
            )
        if request.mode and request.mode not in MODES:
            errors["mode"] = "Mode must be std (720p) or pro (1080p)."
        if request.image_data is not None:
            try:
                if check_image_bytes(request.image_data) == "image/webp":
                    errors["image"] = "The Kling API takes JPEG or PNG images, not WebP."
            except InvalidRequest as exc:
                errors.update(exc.errors)
        if errors:
            raise InvalidRequest(errors)

    def create_task(
        self, request: GenerationRequest, *, callback_url: str | None, reference: str | None = None
    ) -> str:
        self.validate(request)
        payload = build_payload(
            request, model_name=self.model_name, callback_url=callback_url, reference=reference
        )
        try:
            data = self._call("POST", PATHS[request.kind], endpoint="create", json_body=payload)
        except ProviderError as exc:
            if reference and exc.code == 1201 and "external_task_id" in exc.message:
                # An earlier attempt whose answer was lost did create it: find it, never resend.
                raise ProviderError(
                    f"Kling create: {exc.message}; the task exists",
                    action=Action.UNKNOWN,
                    code=exc.code,
                ) from None
            raise
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError(
                "Kling create: success answer without a task_id", action=Action.UNKNOWN, code=0
            )
        return task_id

    def get_task(self, task_id: str, *, kind: str | None = None) -> TaskStatus:
        kinds = [kind] if kind in PATHS else list(PATHS)
        for position, each in enumerate(kinds):
            try:
                return self._query(f"{PATHS[each]}/{task_id}", task_id=task_id)
            except ProviderError as exc:
                if exc.code != TASK_NOT_FOUND_CODE or position == len(kinds) - 1:
                    raise
        raise AssertionError("unreachable")

    def find_task(self, reference: str, *, kind: str) -> TaskStatus | None:
        try:
            return self._query(PATHS[kind], task_id="", params={"external_task_id": reference})
        except ProviderError as exc:
            if exc.code == TASK_NOT_FOUND_CODE:
                return None
            raise

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskStatus:
        # Kling signs nothing: the per-job token in the callback URL is the authentication,
        # and the outcome is read back from the API before it is believed.
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise CallbackMalformed("callback body is not JSON") from None
        except RecursionError:
            raise CallbackMalformed("callback body is nested too deeply") from None
        if isinstance(document, dict) and isinstance(document.get("data"), dict):
            document = document["data"]
        if not isinstance(document, dict):
            raise CallbackMalformed("callback body is not a task")
        task_id = callback_task_id(document.get("task_id"))
        if task_id is None:
            raise CallbackMalformed("callback has no task_id")
        try:
            return status_from_task(document, task_id=task_id)
        except ValueError as exc:
            raise CallbackRejected(f"callback unreadable: {exc}") from None

    def credits_left(self) -> Decimal | None:
        # The account's resource packs are not credits; the API's own refusal (1102) pauses.
        return None

    def upload_image(self, data: bytes, filename: str) -> str:
        check_image_bytes(data)
        raise ProviderError(
            "Kling takes images inline: nothing is uploaded", action=Action.FAIL, code=None
        )

    def fresh_download_url(self, url: str) -> str:
        # Outputs stay 30 days at the same URL; the query answer carries it if it ever moves.
        return url

    # --- HTTP ----------------------------------------------------------------------------------

    def _query(
        self, path: str, *, task_id: str, params: Mapping[str, str] | None = None
    ) -> TaskStatus:
        data = self._call("GET", path, endpoint="query", params=params, retries=self.get_retries)
        if not isinstance(data, dict):
            raise ProviderError(
                "Kling query: answer without task data", action=Action.RETRY, code=0
            )
        try:
            return status_from_task(data, task_id=task_id)
        except ValueError as exc:
            raise ProviderError(f"Kling query: {exc}", action=Action.RETRY, code=0) from None

    def _call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        retries: int = 0,
    ) -> Any:
        """Send one request and return the answer's `data` when its body `code` is 0.

        A create (POST) may have been carried out even if no answer came back: it is never
        repeated, and a lost answer is `Action.UNKNOWN`. A token the server calls expired is
        re-made and the request sent once more (the server did nothing with it). `retries`
        repeats a query on connection errors only.
        """
        if not self._access_key or not self._secret_key:
            raise ProviderError(
                f"Kling {endpoint}: no access key and secret key configured",
                action=Action.PAUSE,
                code=1001,
            )
        may_have_acted = method == "POST"
        refreshed = False
        while True:
            token = self._signer.token()
            response = send(
                self._session,
                method,
                self.base_url + path,
                what=f"Kling {endpoint}",
                timeout=(self.connect_timeout, self.read_timeout),
                may_have_acted=may_have_acted,
                retries=retries,
                retry_pause=self.retry_pause,
                params=params,
                json=json_body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
            code, body = _read_code(response)
            if code in EXPIRED_TOKEN_CODES and not refreshed:
                logger.info("Kling %s: token refused (code %s); making a new one", endpoint, code)
                self._signer.discard(token)
                refreshed = True
                continue
            return self._answer(
                response, code, body, endpoint=endpoint, may_have_acted=may_have_acted
            )

    def _answer(
        self,
        response: requests.Response,
        code: int | None,
        body: Any,
        *,
        endpoint: str,
        may_have_acted: bool,
    ) -> Any:
        status = response.status_code
        if code == 0 and status < 400:
            return body.get("data")
        if code is None:
            # Unreadable: a 2xx or a 5xx from something in front may hide a created task.
            if may_have_acted and (status < 400 or status >= 500):
                raise ProviderError(
                    f"Kling {endpoint}: unreadable answer (HTTP {status}); the task may exist",
                    action=Action.UNKNOWN,
                    code=status,
                )
            action = Action.RETRY if status < 400 else action_for(None, status)
        else:
            action = action_for(code, status)
        message = str(body.get("message") or "no message") if isinstance(body, dict) else ""
        message = self._scrub(message)
        logger.warning(
            "Kling %s: HTTP %s, code %s (%s): %s", endpoint, status, code, action.value, message
        )
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), time.time)
        raise ProviderError(
            f"Kling {endpoint}: code {code if code is not None else status}: {message}",
            action=action,
            code=code if code is not None else status,
            retry_after=retry_after if action is Action.RETRY else None,
        )

    def _scrub(self, text: str) -> str:
        for secret in (self._secret_key, self._access_key):
            if secret:
                text = text.replace(secret, "***")
        return text


def _read_code(response: requests.Response) -> tuple[int | None, Any]:
    try:
        body = response.json()
    except ValueError:
        return None, None
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, bool) or not isinstance(code, int):
        return None, body
    return code, body


def status_from_task(data: Mapping[str, Any], *, task_id: str) -> TaskStatus:
    """Read a query answer's `data` (or a callback body) into a `TaskStatus`.

    Raises ValueError for a task that cannot be trusted: unknown status, or success without a
    video URL.
    """
    raw_status = str(data.get("task_status") or "").lower()
    if raw_status not in STATES:
        raise ValueError(f"unknown task_status {data.get('task_status')!r}")
    state = STATES[raw_status]
    result = data.get("task_result") or {}
    videos = result.get("videos") if isinstance(result, dict) else None
    videos = videos or []
    if not isinstance(videos, list) or not all(isinstance(video, dict) for video in videos):
        raise ValueError("task_result.videos is not a list of videos")
    urls = [str(video["url"]) for video in videos if video.get("url")]
    if state is TaskState.SUCCESS and not urls:
        raise ValueError("succeed without a video URL")
    info = data.get("task_info") or {}
    external = info.get("external_task_id") if isinstance(info, dict) else None
    message = data.get("task_status_msg") or None
    return TaskStatus(
        task_id=str(data.get("task_id") or task_id),
        state=state,
        result_urls=urls,
        fail_code="failed" if state is TaskState.FAIL else None,
        fail_message=str(message) if state is TaskState.FAIL and message else None,
        credits_consumed=None,
        raw=dict(data),
        model=None,
        external_task_id=str(external) if external else None,
    )
