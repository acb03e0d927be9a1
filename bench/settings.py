"""Settings for benchmark runs: the production settings, plus a count of the SQL statements each
process sends, written to $BENCH_QUERY_DIR/<pid> (at most twice a second, and at exit)."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db.backends.signals import connection_created

from config.settings import *  # noqa: F403

_QUERY_DIR = os.environ.get("BENCH_QUERY_DIR", "")


class _StatementCount:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.total = 0
        self.broker = 0  # django-q2's own tables: the task queue and its results
        self.written = 0.0
        self.pid = os.getpid()

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        with self.lock:
            if os.getpid() != self.pid:  # a forked worker starts its own count
                self.pid, self.total, self.broker = os.getpid(), 0, 0
            self.total += 1
            if '"django_q_' in sql:
                self.broker += 1
            due = time.monotonic() - self.written > 0.5
        if due:
            self.write()
        return execute(sql, params, many, context)

    def write(self) -> None:
        with self.lock:
            self.written = time.monotonic()
            line = f"{self.total} {self.broker}\n"
        with open(os.path.join(self.folder, str(os.getpid())), "w") as out:
            out.write(line)


if _QUERY_DIR:
    _count = _StatementCount(_QUERY_DIR)
    atexit.register(_count.write)

    def _install(sender: Any, connection: Any, **kwargs: Any) -> None:
        if _count not in connection.execute_wrappers:
            connection.execute_wrappers.append(_count)

    connection_created.connect(_install, weak=False)


if os.environ.get("BENCH_PROFILE_DIR"):
    INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.ProfilingConfig"]  # noqa: F405
