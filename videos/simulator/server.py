"""The simulator over real HTTP: a threaded standard-library server around `SimulatedKie`.

Serves the kie.ai API, the file-upload API (one port for both), the files themselves, and, when
allowed, a control endpoint for tests:

    GET  /_control          current faults
    POST /_control          apply a fault patch, e.g. {"rate_limit": 2, "server_error": 0.5}
                            ("credits": N sets the balance)
    GET  /_control/stats    counters (requests, createTask calls, callbacks, renders, credits...)
    GET  /_control/tasks    every task created: its id, callBackUrl, state and credits
    POST /_control/reset    starting faults, credits and counters; tasks forgotten
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from videos.simulator.faults import Faults
from videos.simulator.service import Answer, ApiRequest, SimulatedKie, SimulatorConfig

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
FILE_CHUNK_BYTES = 256 * 1024


class KieSimulator:
    """A kie.ai-compatible server. `start()` runs it in a background thread; `stop()` ends it.

    With `port=0` the system picks a free port; `base_url` tells which.
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, faults: Faults | None = None
    ) -> None:
        self.config = config or SimulatorConfig()
        self.service = SimulatedKie(self.config, faults)
        self._httpd = _Server((self.config.host, self.config.port), _Handler)
        self._httpd.service = self.service
        self._httpd.allow_control = self.config.allow_control
        # An AF_INET server's address is (host, port), the host a str.
        host, port = cast("tuple[str, int]", self._httpd.server_address[:2])
        local = f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        public = self.config.public_url or f"http://{local}"
        self.service.set_public_url(public, also=(local, f"localhost:{port}", f"127.0.0.1:{port}"))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return self.service.public_url

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> KieSimulator:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="kie-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def shutdown(self) -> None:
        """Ask a `serve_forever()` running in another thread to return."""
        self._httpd.shutdown()

    def _close(self) -> None:
        self._httpd.server_close()
        self.service.close()

    def __enter__(self) -> KieSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Shortcuts for in-process callers (tests, the benchmark).
    def set_faults(self, **patch: Any) -> dict[str, Any]:
        return self.service.set_faults(patch)

    def stats(self) -> dict[str, Any]:
        return self.service.stats()

    def reset(self) -> None:
        self.service.reset()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    service: SimulatedKie
    allow_control: bool


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as with the real API
    server_version = "kie-simulator"
    timeout = 60  # idle keep-alive connections end after this

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line: headers (with the API key) never reach the log.
        logger.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        service = self.server.service
        try:
            body = self._read_body()
            if body is None:
                return
            if parts.path.startswith("/files/") and method in ("GET", "HEAD"):
                self._send_file(parts.path, head=method == "HEAD")
            elif parts.path == "/_control" or parts.path.startswith("/_control/"):
                self._send(self._control(method, parts.path, body))
            elif service.route(method, parts.path) is not None:
                request = ApiRequest(
                    method, parts.path, urllib.parse.parse_qs(parts.query), self.headers, body
                )
                self._send(service.handle_api(request))
            else:
                self._send(Answer(404, {"code": 404, "msg": "Not found", "data": None}))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            logger.exception("simulator failed on %s %s", method, parts.path)
            self.close_connection = True
            self._send(Answer(500, {"code": 500, "msg": "Internal error", "data": None}))

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body makes the connection unusable
            self._send(Answer(413, {"code": 413, "msg": "Request body too large", "data": None}))
            return None
        return self.rfile.read(length) if length else b""

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        if not self.server.allow_control:
            return Answer(404, {"code": 404, "msg": "Not found", "data": None})
        service = self.server.service
        if path == "/_control" and method == "GET":
            return Answer(200, {"code": 200, "msg": "success", "data": service.faults()})
        if path == "/_control" and method == "POST":
            try:
                patch = json.loads(body or b"{}")
                if not isinstance(patch, dict):
                    raise ValueError("a JSON object is expected")
                data = service.set_faults(patch)
            except (ValueError, UnicodeDecodeError) as exc:
                return Answer(400, {"code": 400, "msg": str(exc), "data": None})
            return Answer(200, {"code": 200, "msg": "success", "data": data})
        if path == "/_control/stats" and method == "GET":
            return Answer(200, {"code": 200, "msg": "success", "data": service.stats()})
        if path == "/_control/tasks" and method == "GET":
            return Answer(200, {"code": 200, "msg": "success", "data": service.task_list()})
        if path == "/_control/reset" and method == "POST":
            service.reset()
            return Answer(200, {"code": 200, "msg": "success", "data": service.faults()})
        return Answer(404, {"code": 404, "msg": "Not found", "data": None})

    def _send(self, answer: Answer) -> None:
        payload = json.dumps(answer.body).encode()
        if answer.malformed:
            payload = payload[: max(1, len(payload) // 2)]  # valid start, cut mid-way
        if answer.delay:
            threading.Event().wait(answer.delay)
        if answer.disconnect:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_file(self, path: str, *, head: bool) -> None:
        stored, delay = self.server.service.open_file(path)
        if delay:
            threading.Event().wait(delay)
        if stored is not None and not stored.path.exists():
            stored = None  # the simulator was reset while this answer was held back
        if stored is None:
            self._send(
                Answer(404, {"code": 404, "msg": "File not found or link expired", "data": None})
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", stored.content_type)
        self.send_header("Content-Length", str(stored.size))
        self.end_headers()
        if head:
            return
        with stored.path.open("rb") as source:
            while chunk := source.read(FILE_CHUNK_BYTES):
                self.wfile.write(chunk)
