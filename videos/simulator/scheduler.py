"""One thread that runs callables at given monotonic times (task completions)."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="kie-simulator-scheduler", daemon=True
        )
        self._thread.start()

    def call_at(self, when: float, function: Callable[..., Any], *args: Any) -> None:
        with self._wake:
            heapq.heappush(self._queue, (when, next(self._order), function, args))
            self._wake.notify()

    def clear(self) -> None:
        with self._wake:
            self._queue.clear()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._queue.clear()
            self._wake.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._stopped:
                    return
                _, _, function, args = heapq.heappop(self._queue)
            try:
                function(*args)
            except Exception:  # one broken task must not stop the clock for the others
                logger.exception("scheduled call failed")
