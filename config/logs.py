"""Log lines: plain text or JSON lines, each with the request id of the request (or of the
request that enqueued the worker task) it was written for, and without secrets.

The request id lives in a context variable: the middleware sets it for a request, django-q2's
`pre_enqueue` signal copies it into every task the request enqueues, and `pre_execute` sets it
again in the worker that runs the task. Nothing here reads Django settings, so gunicorn's own
loggers can be configured with the same `logging_config`.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import uuid
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# An incoming X-Request-ID is kept only when it is short and plain, so a client cannot forge
# log lines or fill them with junk; anything else is replaced by a new id.
ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

# Bearer secrets that travel in URL paths: a job's callback token and a signed clip link.
SECRET_IN_PATH = re.compile(r"(/callbacks/kie/[0-9a-fA-F-]{36}/|/clips/)[^/\s?\"']+")
# Authorization headers or tokens quoted in a message (e.g. by a library at DEBUG).
SECRET_IN_TEXT = re.compile(
    r"(?i)((?:authorization|bearer|token|api[_-]?key)[\"']?\s*[:=]?\s*)"
    r"(?:bearer\s+)?[\"']?[A-Za-z0-9._~+/=-]{12,}"
)
REDACTED = "[redacted]"


def request_id_from(header: str | None) -> str:
    """The id to log a request under: the client's or proxy's `X-Request-ID` when acceptable."""
    if header and ACCEPTED_ID.match(header):
        return header
    return uuid.uuid4().hex


def redact(text: str) -> str:
    text = SECRET_IN_PATH.sub(lambda m: m.group(1) + REDACTED, text)
    return SECRET_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` (or "-"), and redacts secrets from the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def logging_config(*, level: str, fmt: str, loggers: dict[str, Any] | None = None) -> dict:
    """A `dictConfig` for the console: `fmt` is "plain" or "json"."""
    if fmt not in {"plain", "json"}:
        raise ValueError(f"LOG_FORMAT must be plain or json, not {fmt!r}.")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "config.logs.RequestIdFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
            "json": {"()": "config.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # urllib3 logs full request lines at DEBUG; keep it quiet so nothing sensitive leaks.
            "urllib3": {"level": "WARNING"},
            **(loggers or {}),
        },
    }


# --- Carrying the id into worker tasks (django-q2 signals, connected by the videos app) -------

_outer_ids: list[str | None] = []
task_logger = logging.getLogger("reelforge.tasks")


def task_carry_request_id(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    current = request_id.get()
    if current:
        task["request_id"] = current


def task_adopt_request_id(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    # Tasks with no id (the sweep's) must not inherit the previous task's.
    _outer_ids.append(request_id.get())
    request_id.set(task.get("request_id"))
    if task.get("request_id"):
        # The first line under the request's id in the worker: the link between the two logs.
        task_logger.info("Task %s started", task.get("name"))


def task_restore_request_id(sender: Any, task: dict[str, Any], **kwargs: Any) -> None:
    # With Q_SYNC the task runs inside the request: give the request its own id back.
    if _outer_ids:
        request_id.set(_outer_ids.pop())
