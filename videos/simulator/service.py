"""The simulated kie.ai account: tasks, credits, files, callbacks and faults, without sockets.

`server.py` puts this behind HTTP; everything here takes a parsed request and returns an
`Answer`, so the provider's behaviour reads in one place.
"""

from __future__ import annotations

import collections
import hmac
import json
import logging
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from videos.simulator import callbacks, kling, rendering, tasks
from videos.simulator.faults import (
    CREATE_TASK,
    CREDIT,
    DOWNLOAD_URL,
    RECORD_INFO,
    UPLOAD,
    Faults,
    RateLimiter,
)
from videos.simulator.scheduler import Scheduler
from videos.simulator.storage import FileStore, StoredFile

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port
    public_url: str | None = None  # how clients reach us, when not http://host:port
    api_key: str = "kie-simulator-key"
    # The official Kling API's routes take a JWT made from these.
    kling_access_key: str = "kling-simulator-access-key"
    kling_secret_key: str = "kling-simulator-secret-key"
    hmac_key: str | None = None  # sign callbacks when set
    credits: int = 100_000
    task_seconds: float = 5.0  # from createTask to the end of the task (longer if rendering is)
    result_ttl: float = 86_400.0  # result URLs 404 after this
    download_url_ttl: float = 1_200.0  # links from /api/v1/common/download-url
    upload_ttl: float = 3 * 86_400.0
    render: rendering.RenderSettings = field(default_factory=rendering.RenderSettings)
    render_workers: int = 2
    callback_workers: int = 4
    callback_timeout: float = 10.0
    image_fetch_timeout: float = 10.0
    allow_control: bool = False  # the /_control endpoint (fault switches, statistics)
    seed: int | None = None  # for repeatable fault draws
    # Render each shape of clip (model, duration, sound, aspect ratio) once and hand out copies:
    # rendering costs nothing, so a load test measures the platform, not the simulator.
    instant_render: bool = False


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Any  # case-insensitive .get(), as http.server provides
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # JSON-serialisable
    headers: dict[str, str] = field(default_factory=dict)
    file: StoredFile | None = None  # a file to stream instead of a JSON body
    # Faults applied while sending:
    delay: float = 0.0
    malformed: bool = False
    disconnect: bool = False


class SimulatedKie:
    def __init__(self, config: SimulatorConfig, faults: Faults | None = None) -> None:
        self.config = config
        self.public_url = config.public_url or f"http://{config.host}:{config.port}"
        self.own_netlocs: set[str] = set()
        self._initial_faults = (faults or Faults()).copy()
        self._lock = threading.RLock()
        self._rng = random.Random(config.seed)
        self._faults = self._initial_faults.copy()
        self._credits = config.credits
        self._tasks: dict[str, tasks.SimTask] = {}
        self._limiter = RateLimiter()
        self._files = FileStore()
        self._epoch = 0  # bumped by reset(): background work from before it is dropped
        self._last_task_millis = 0
        self._answers = 0
        self._callbacks_built = 0
        self._stats = _Stats()
        self._rendered: dict[tuple[Any, ...], bytes] = {}
        self._scheduler = Scheduler()
        self._render_pool = ThreadPoolExecutor(
            config.render_workers, thread_name_prefix="kie-sim-render"
        )
        self._callback_pool = ThreadPoolExecutor(
            config.callback_workers, thread_name_prefix="kie-sim-callback"
        )
        self._routes: dict[tuple[str, str], tuple[str, Callable[[ApiRequest], Answer]]] = {
            ("POST", "/api/v1/jobs/createTask"): (CREATE_TASK, self._create_task),
            ("GET", "/api/v1/jobs/recordInfo"): (RECORD_INFO, self._record_info),
            ("GET", "/api/v1/chat/credit"): (CREDIT, self._credit),
            ("POST", "/api/v1/common/download-url"): (DOWNLOAD_URL, self._download_url),
            ("POST", "/api/file-stream-upload"): (UPLOAD, self._upload),
        }

    def set_public_url(self, url: str, *, also: tuple[str, ...] = ()) -> None:
        self.public_url = url.rstrip("/")
        self.own_netlocs = {urllib.parse.urlsplit(self.public_url).netloc, *also}

    # --- the API -------------------------------------------------------------------------------

    def route(self, method: str, path: str) -> str | None:
        resolved = self._resolve(method, path)
        return resolved[0] if resolved else None

    def _resolve(
        self, method: str, path: str
    ) -> tuple[str, Callable[[ApiRequest], Answer], str] | None:
        """(endpoint name, handler, dialect) for a request, None when nothing serves it.

        The Kling routes count as createTask and recordInfo, so every fault applies to both."""
        route = self._routes.get((method, path))
        if route is not None:
            return route[0], route[1], "kie"
        if method == "POST" and kling.CREATE_PATH.match(path):
            return CREATE_TASK, self._kling_create, "kling"
        if method == "GET" and (kling.QUERY_PATH.match(path) or kling.CREATE_PATH.match(path)):
            return RECORD_INFO, self._kling_query, "kling"
        return None

    def handle_api(self, request: ApiRequest) -> Answer:
        resolved = self._resolve(request.method, request.path)
        assert resolved is not None  # the server asks `route` first
        endpoint, handler, dialect = resolved
        with self._lock:
            self._stats.requests[endpoint] += 1
            if endpoint == CREATE_TASK:
                self._stats.create_task_calls += 1
        auth = request.headers.get("Authorization")
        if dialect == "kling":
            refused = kling.token_error(
                auth,
                access_key=self.config.kling_access_key,
                secret_key=self.config.kling_secret_key,
            )
            with self._lock:
                if refused is None and self._faults.expired_token.fires(self._rng, endpoint):
                    self._stats.faults["expired_token"] += 1
                    refused = (kling.TOKEN_EXPIRED, "Authorization is expired")
            if refused is not None:
                return self._reject(endpoint, refused[0], refused[1], dialect=dialect)
        elif not self._authorized(auth):
            return self._reject(endpoint, 401, "You do not have access permissions", status=401)
        with self._lock:
            faults = self._faults
            forced = faults.forced_codes.get(endpoint)
            if forced is not None:
                self._stats.faults["forced_code"] += 1
                return self._reject(endpoint, forced, f"Simulated answer {forced}", dialect=dialect)
            if faults.server_error.fires(self._rng, endpoint):
                self._stats.faults["server_error"] += 1
                return self._reject(
                    endpoint,
                    500,
                    "Server error, please try again later",
                    status=500,
                    dialect=dialect,
                )
            if faults.maintenance.fires(self._rng, endpoint):
                self._stats.faults["maintenance"] += 1
                return self._reject(endpoint, 455, "Service under maintenance", dialect=dialect)
            delay = faults.slow_seconds if faults.slow.fires(self._rng, endpoint) else 0.0
            malformed = faults.malformed_json.fires(self._rng, endpoint)
            disconnect = faults.disconnect.fires(self._rng, endpoint)
            for name, fired in (
                ("slow", delay > 0),
                ("malformed_json", malformed),
                ("disconnect", disconnect),
            ):
                if fired:
                    self._stats.faults[name] += 1
        # These faults strike after the work is done: a created task exists even if the
        # answer is late, garbled or never arrives, which is exactly what clients must survive.
        answer = handler(request)
        answer.delay, answer.malformed, answer.disconnect = delay, malformed, disconnect
        return answer

    def _create_task(self, request: ApiRequest) -> Answer:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return self._reject(CREATE_TASK, 422, "Request body is not valid JSON")
        error = tasks.create_request_error(body)
        if error:
            return self._reject(CREATE_TASK, 422, error)
        return self._start_task(body)

    def _kling_create(self, request: ApiRequest) -> Answer:
        kind = kling.CREATE_PATH.match(request.path).group(1)  # type: ignore[union-attr]
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return self._reject(
                CREATE_TASK, 1200, "Request body is not valid JSON", dialect="kling"
            )
        parsed = kling.create_request(kind, payload)
        if isinstance(parsed, str):
            return self._reject(CREATE_TASK, 1201, parsed, dialect="kling")
        body, image_data = parsed
        external = payload.get("external_task_id")
        with self._lock:
            if external and any(t.external_task_id == external for t in self._tasks.values()):
                return self._reject(
                    CREATE_TASK, 1201, "external_task_id already exists", dialect="kling"
                )
        return self._start_task(
            body, dialect="kling", external_task_id=external, image_data=image_data
        )

    def _kling_query(self, request: ApiRequest) -> Answer:
        match = kling.QUERY_PATH.match(request.path)
        with self._lock:
            if match is not None:
                task = self._tasks.get(match.group(2))
            else:
                external = (request.query.get("external_task_id") or [""])[0]
                if not external:
                    return self._reject(
                        RECORD_INFO,
                        1201,
                        "task_id or external_task_id is required",
                        dialect="kling",
                    )
                task = next(
                    (t for t in self._tasks.values() if t.external_task_id == external), None
                )
            kind = (match or kling.CREATE_PATH.match(request.path)).group(1)  # type: ignore[union-attr]
            if task is None or task.dialect != "kling" or task.model != kling.KINDS[kind]:
                return self._reject(RECORD_INFO, 1203, "Task not found", dialect="kling")
            data = kling.task_data(task, self.config.task_seconds)
        return Answer(200, kling.body(0, "SUCCEED", data))

    def _start_task(
        self,
        body: dict[str, Any],
        *,
        dialect: str = "kie",
        external_task_id: str | None = None,
        image_data: bytes | None = None,
    ) -> Answer:
        """Accept a valid create request (rate limit and credits allowing) and start rendering."""
        price = tasks.price_of(body["input"])
        with self._lock:
            faults = self._faults
            if self._limiter.wait(faults.rate_limit, faults.rate_window) is not None:
                return self._reject(
                    CREATE_TASK,
                    429,
                    "Rate limited: too many new tasks, try again later",
                    dialect=dialect,
                )
            if faults.out_of_credits or self._credits < price:
                return self._reject(CREATE_TASK, 402, "Insufficient credits", dialect=dialect)
            self._limiter.record()
            task = tasks.SimTask(
                task_id=self._new_task_id(dialect),
                body=body,
                price=price,
                dialect=dialect,
                external_task_id=external_task_id,
                image_data=image_data,
            )
            task.will_fail = faults.generation_failure.fires(self._rng)
            early = task.callback_url is not None and faults.early_callback.fires(self._rng)
            if early:
                self._stats.faults["early_callback"] += 1
            self._credits -= price
            self._tasks[task.task_id] = task
            self._stats.tasks_created += 1
            epoch = self._epoch
        if early:
            self._run_task(task, epoch, finish_now=True)
        else:
            self._render_pool.submit(self._run_task, task, epoch)
        if dialect == "kling":
            return Answer(
                200, kling.body(0, "SUCCEED", kling.task_data(task, self.config.task_seconds))
            )
        return self._ok({"taskId": task.task_id})

    def _record_info(self, request: ApiRequest) -> Answer:
        task_id = (request.query.get("taskId") or [""])[0]
        if not task_id:
            return self._reject(RECORD_INFO, 422, "taskId is required")
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return self._reject(RECORD_INFO, 404, "Task not found")
            return self._ok(task.record(self.config.task_seconds))

    def _credit(self, request: ApiRequest) -> Answer:
        with self._lock:
            return self._ok(self._credits)

    def _download_url(self, request: ApiRequest) -> Answer:
        try:
            url = json.loads(request.body).get("url")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return self._reject(DOWNLOAD_URL, 422, "Request body must be a JSON object with url")
        link = None
        if isinstance(url, str):
            parts = urllib.parse.urlsplit(url)
            if parts.netloc in self.own_netlocs:
                link = self._files.find_link(parts.path)
        if link is None or link.kind != "result":
            return self._reject(
                DOWNLOAD_URL, 422, "Only URLs of files generated by kie.ai are supported"
            )
        path = self._files.link(
            link.key, name=link.name, ttl=self.config.download_url_ttl, kind="download"
        )
        return self._ok(self.public_url + path)

    def _upload(self, request: ApiRequest) -> Answer:
        try:
            form = parse_multipart(request.body, request.headers.get("Content-Type", ""))
        except ValueError as exc:
            return self._reject(UPLOAD, 422, f"Invalid multipart body: {exc}")
        if "file" not in form or not form["file"][1]:
            return self._reject(UPLOAD, 422, "file is required")
        original_name, data = form["file"]
        upload_path = form.get("uploadPath", (None, b""))[1].decode("utf-8", "replace").strip("/")
        if not upload_path:
            return self._reject(UPLOAD, 422, "uploadPath is required")
        name = (
            form.get("fileName", (None, b""))[1].decode("utf-8", "replace")
            or original_name
            or "file"
        )
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:120] or "file"
        content_type = _sniff_image_type(data) or "application/octet-stream"
        key = self._files.put(data, content_type)
        path = self._files.link(key, name=name, ttl=self.config.upload_ttl, kind="upload")
        now = time.time()
        url = self.public_url + path
        return self._ok(
            {
                "fileId": key,
                "fileName": name,
                "originalName": original_name or name,
                "fileSize": len(data),
                "mimeType": content_type,
                "uploadPath": upload_path,
                "fileUrl": url,
                "downloadUrl": url,
                "uploadTime": _iso(now),
                "expiresAt": _iso(now + self.config.upload_ttl),
            },
            message="File uploaded successfully",
        )

    def open_file(self, path: str) -> tuple[StoredFile | None, float]:
        """The file behind a link (None if unknown or expired), and how long to wait before
        sending it (the slow_result fault)."""
        stored = self._files.open_link(path)
        delay = 0.0
        if stored is not None:
            with self._lock:
                if self._faults.slow_result.fires(self._rng):
                    self._stats.faults["slow_result"] += 1
                    delay = self._faults.slow_seconds
        return stored, delay

    def task_list(self) -> list[dict[str, Any]]:
        """Every task created since the last reset: what a test compares the platform's jobs with."""
        with self._lock:
            return [
                {
                    "taskId": task.task_id,
                    "callBackUrl": task.callback_url,
                    "state": task.final_state or "running",
                    "credits": task.price,
                }
                for task in self._tasks.values()
            ]

    # --- answers -------------------------------------------------------------------------------

    def _ok(self, data: Any, *, message: str = "success") -> Answer:
        return Answer(200, self._body(200, message, data))

    def _reject(
        self, endpoint: str, code: int, message: str, *, status: int = 200, dialect: str = "kie"
    ) -> Answer:
        """A refusal: `code` is kie.ai's body code (or, for the Kling routes, a Kling code);
        the Kling routes answer it in their own codes and HTTP statuses."""
        with self._lock:
            self._stats.rejected[f"{endpoint}:{code}"] += 1
            retry_after = self._faults.retry_after
        if dialect == "kling":
            status, kling_code = kling.kling_status_and_code(code, status)
            answer = Answer(status, kling.body(kling_code, message, None))
        else:
            answer = Answer(status, self._body(code, message, None))
        if retry_after is not None and (code in (429, 455) or 500 <= code < 1000 or code >= 5000):
            answer.headers["Retry-After"] = f"{retry_after:g}"
        return answer

    def _body(self, code: int, message: str, data: Any) -> dict[str, Any]:
        with self._lock:
            self._answers += 1
            key = _pick(self._faults.message_field, ("msg", "message"), self._answers)
        return {"code": code, key: message, "data": data}

    def _authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.config.api_key}"
        return header is not None and hmac.compare_digest(header.encode(), expected.encode())

    def _new_task_id(self, dialect: str = "kie") -> str:
        # kie.ai's documented shape, "task_kling-2.6_<Unix ms>", kept unique under bursts;
        # Kling's ids are bare digits.
        millis = max(int(time.time() * 1000), self._last_task_millis + 1)
        self._last_task_millis = millis
        return str(millis) if dialect == "kling" else f"task_kling-2.6_{millis}"

    # --- task lifecycle ------------------------------------------------------------------------

    def _run_task(self, task: tasks.SimTask, epoch: int, *, finish_now: bool = False) -> None:
        """Render (unless the task is doomed), then finish it when its time is up."""
        if epoch != self._epoch:
            return  # queued before a reset: nobody is waiting for it any more
        if not task.will_fail:
            started = time.monotonic()
            try:
                video = self._render(task)
            except rendering.RenderError as exc:
                task.fail_code, task.fail_message = "422", str(exc)
            except Exception:
                logger.exception("rendering %s failed", task.task_id)
                task.fail_code, task.fail_message = (
                    "500",
                    "Internal error while generating the video",
                )
            else:
                task.video_key = self._files.put(video, "video/mp4")
                with self._lock:
                    self._stats.renders += 1
                    self._stats.render_seconds += time.monotonic() - started
        else:
            task.fail_code, task.fail_message = "501", "Video generation failed"
        if finish_now:
            self._finish(task, epoch, deliver_now=True)
        else:
            self._scheduler.call_at(
                task.created_monotonic + self.config.task_seconds, self._finish, task, epoch
            )

    def _render(self, task: tasks.SimTask) -> bytes:
        if not self.config.instant_render:
            return self._render_now(task)
        task_input = task.input
        shape = (
            task.model,
            task_input["duration"],
            task_input["sound"],
            task_input.get("aspect_ratio"),
        )
        with self._lock:
            video = self._rendered.get(shape)
        if video is None:
            video = self._render_now(task)
            with self._lock:
                self._rendered[shape] = video
        return video

    def _render_now(self, task: tasks.SimTask) -> bytes:
        task_input = task.input
        duration, sound = int(task_input["duration"]), task_input["sound"]
        if task.model == tasks.TEXT_TO_VIDEO_MODEL:
            return rendering.render_text_to_video(
                task_input["prompt"],
                duration=duration,
                aspect_ratio=task_input["aspect_ratio"],
                sound=sound,
                settings=self.config.render,
            )
        if task.image_data is not None:
            image = task.image_data
        else:
            image = self._fetch_image(task_input["image_urls"][0])
        return rendering.render_image_to_video(
            image,
            duration=duration,
            sound=sound,
            settings=self.config.render,
            motion_seed=task_input["prompt"],
        )

    def _fetch_image(self, url: str) -> bytes:
        parts = urllib.parse.urlsplit(url)
        if parts.netloc in self.own_netlocs:
            stored = self._files.open_link(parts.path)
            if stored is None:
                raise rendering.RenderError("image URL not found or expired")
            data = stored.path.read_bytes()
        else:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "kie-simulator"})
                with urllib.request.urlopen(
                    request, timeout=self.config.image_fetch_timeout
                ) as response:
                    data = response.read(MAX_IMAGE_BYTES + 1)
            except (OSError, ValueError) as exc:
                raise rendering.RenderError(
                    f"image could not be fetched: {type(exc).__name__}"
                ) from None
        if len(data) > MAX_IMAGE_BYTES:
            raise rendering.RenderError("image is larger than 10 MB")
        if _sniff_image_type(data) is None:
            raise rendering.RenderError("image must be jpeg, png or webp")
        return data

    def _finish(self, task: tasks.SimTask, epoch: int, *, deliver_now: bool = False) -> None:
        with self._lock:
            if epoch != self._epoch or task.final_state is not None:
                return
            task.completed_at = time.time()
            if task.video_key is not None and task.fail_code is None:
                expired = self._faults.expired_result.fires(self._rng)
                if expired:
                    self._stats.faults["expired_result"] += 1
                path = self._files.link(
                    task.video_key,
                    name=f"{task.task_id}.mp4",
                    ttl=0.0 if expired else self.config.result_ttl,
                    kind="result",
                )
                task.result_url = self.public_url + path
                task.final_state = "success"
                self._stats.tasks_succeeded += 1
            else:
                task.final_state = "fail"
                self._credits += task.price  # failed generations cost nothing
                self._stats.tasks_failed += 1
            task.remaining_credits = self._credits
            if task.callback_url is None:
                return
            lost = self._faults.lost_callback.fires(self._rng)
            duplicate = self._faults.duplicate_callback.fires(self._rng)
        if deliver_now:
            self._deliver_callback(task, epoch, lost=lost, duplicate=duplicate)
        else:
            self._callback_pool.submit(
                self._deliver_callback, task, epoch, lost=lost, duplicate=duplicate
            )

    def callback_message(self, task: tasks.SimTask) -> tuple[bytes, dict[str, str]]:
        """The callback body and signing headers for a finished task."""
        if task.dialect == "kling":
            # Kling posts the task as its query shows it, unsigned.
            with self._lock:
                self._callbacks_built += 1
                data = kling.task_data(task, self.config.task_seconds)
            return json.dumps(data).encode(), {}
        with self._lock:
            self._callbacks_built += 1
            credit_key = _pick(
                self._faults.credit_field,
                ("consumeCredits", "creditsConsumed"),
                self._callbacks_built,
            )
            message_key = _pick(
                self._faults.message_field, ("msg", "message"), self._callbacks_built
            )
            signature_mode = self._faults.callback_signature
            data = task.record(self.config.task_seconds)
        success = task.final_state == "success"
        data[credit_key] = task.price if success else 0
        data["remainedCredits"] = task.remaining_credits
        body = {
            "code": 200 if success else 501,
            message_key: "Playground task completed successfully."
            if success
            else task.fail_message,
            "data": data,
        }
        headers = {}
        if self.config.hmac_key:
            headers = callbacks.signing_headers(
                self.config.hmac_key, task.task_id, time.time(), mode=signature_mode
            )
        return json.dumps(body).encode(), headers

    def _deliver_callback(
        self, task: tasks.SimTask, epoch: int, *, lost: bool, duplicate: bool
    ) -> None:
        if lost:
            with self._lock:
                if epoch != self._epoch:
                    return  # reset meanwhile: the counts belong to what came after
                self._stats.callbacks_lost += 1
                self._stats.note_callback(task.task_id, None, "lost", duplicate=False)
            return
        for attempt in range(2 if duplicate else 1):
            if epoch != self._epoch:
                return
            body, headers = self.callback_message(task)
            delivery = callbacks.post_callback(
                task.callback_url or "", body, headers, timeout=self.config.callback_timeout
            )
            with self._lock:
                if epoch != self._epoch:
                    return  # reset while it was on its way: not counted in the new stats
                self._stats.callbacks_sent += 1
                if attempt:
                    self._stats.callbacks_duplicated += 1
                if delivery.status is not None and 200 <= delivery.status < 300:
                    self._stats.callbacks_delivered += 1
                else:
                    self._stats.callback_errors += 1
                self._stats.note_callback(
                    task.task_id, delivery.status, delivery.error, duplicate=bool(attempt)
                )

    # --- control -------------------------------------------------------------------------------

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return self._faults.to_json()

    def set_faults(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a fault patch (see `Faults`); "credits": N also sets the balance."""
        patch = dict(patch)
        credits = patch.pop("credits", None)
        if credits is not None and (
            isinstance(credits, bool) or not isinstance(credits, int) or credits < 0
        ):
            raise ValueError("credits must be a non-negative integer")
        with self._lock:
            self._faults = self._faults.updated(patch)
            if credits is not None:
                self._credits = credits
            return self._faults.to_json()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            in_flight = sum(1 for task in self._tasks.values() if task.final_state is None)
            return self._stats.to_json() | {"credits": self._credits, "tasks_in_flight": in_flight}

    def reset(self) -> None:
        """Back to the starting faults, credits and counters; tasks and files are forgotten."""
        with self._lock:
            self._epoch += 1
            self._faults = self._initial_faults.copy()
            self._credits = self.config.credits
            self._tasks.clear()
            self._limiter.clear()
            self._stats = _Stats()
            self._rng = random.Random(self.config.seed)
            self._answers = self._callbacks_built = 0
        self._scheduler.clear()
        self._files.clear()

    def close(self) -> None:
        with self._lock:
            self._epoch += 1
        self._scheduler.stop()
        self._render_pool.shutdown(wait=True, cancel_futures=True)
        self._callback_pool.shutdown(wait=True, cancel_futures=True)
        self._files.close()


@dataclass
class _Stats:
    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    create_task_calls: int = 0  # every createTask received, accepted or not
    tasks_created: int = 0
    tasks_succeeded: int = 0
    tasks_failed: int = 0
    rejected: collections.Counter[str] = field(
        default_factory=collections.Counter
    )  # "endpoint:code"
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    renders: int = 0
    render_seconds: float = 0.0
    callbacks_sent: int = 0
    callbacks_delivered: int = 0  # answered 2xx
    callbacks_duplicated: int = 0
    callbacks_lost: int = 0
    callback_errors: int = 0
    recent_callbacks: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=200)
    )

    def note_callback(
        self, task_id: str, status: int | None, error: str | None, *, duplicate: bool
    ) -> None:
        self.recent_callbacks.append(
            {
                "taskId": task_id,
                "status": status,
                "error": error,
                "duplicate": duplicate,
                "at": time.time(),
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "create_task_calls": self.create_task_calls,
            "tasks_created": self.tasks_created,
            "tasks_succeeded": self.tasks_succeeded,
            "tasks_failed": self.tasks_failed,
            "rejected": dict(self.rejected),
            "faults": dict(self.faults),
            "renders": self.renders,
            "render_seconds": round(self.render_seconds, 4),
            "callbacks_sent": self.callbacks_sent,
            "callbacks_delivered": self.callbacks_delivered,
            "callbacks_duplicated": self.callbacks_duplicated,
            "callbacks_lost": self.callbacks_lost,
            "callback_errors": self.callback_errors,
            "recent_callbacks": list(self.recent_callbacks),
        }


def _pick(setting: str, choices: tuple[str, str], counter: int) -> str:
    if setting == "alternate":
        return choices[counter % 2]
    return setting


def _sniff_image_type(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _iso(seconds: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        + f".{int(seconds * 1000) % 1000:03d}Z"
    )


_DISPOSITION_PARAM = re.compile(r';\s*(name|filename)="([^"]*)"')


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """multipart/form-data -> {field: (filename or None, bytes)}. Raises ValueError."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or not match:
        raise ValueError("Content-Type must be multipart/form-data with a boundary")
    delimiter = b"\r\n--" + match.group(1).encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    # Each part sits between CRLF--boundary lines; the body's first line has no leading CRLF.
    for part in (b"\r\n" + body).split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("part without headers")
        params: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                params = dict(_DISPOSITION_PARAM.findall(line))
        if "name" in params:
            fields[params["name"]] = (params.get("filename"), content)
    return fields
