"""gunicorn's settings for Reelforge: `gunicorn -c config/gunicorn.py config.wsgi`.

Threads, not only processes: `GET /jobs/{id}/?wait=N` holds a thread (never a database
connection) while it waits, and a sync worker would be blocked whole by one such request.
The log lines go through the same handler, request ids and redaction as the application's.
"""

from __future__ import annotations

import multiprocessing
import os

from config.logs import logging_config


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


bind = _env("WEB_BIND", "127.0.0.1:8000")
# gunicorn's rule of thumb (2 x cores + 1), capped: each process holds its own connections.
workers = int(_env("WEB_CONCURRENCY", str(min(2 * multiprocessing.cpu_count() + 1, 8))))
worker_class = "gthread"
threads = int(_env("WEB_THREADS", "8"))
# Longer than the longest request: a `?wait=` of 60 s plus the work around it.
timeout = int(_env("WEB_TIMEOUT", "90"))
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (with jitter), so a slow leak never builds up.
max_requests = 2000
max_requests_jitter = 200

# The control socket has one default path per user: a second gunicorn on the host would take
# over the first one's. Signals (HUP to reload, TERM to stop) are all a process manager needs.
control_socket_disable = True

accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
logconfig_dict = logging_config(
    level=_env("LOG_LEVEL", "INFO"),
    fmt=_env("LOG_FORMAT", "plain"),
    loggers={
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
)
