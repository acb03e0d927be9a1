"""With BENCH_PROFILE_DIR set (bench/settings.py), each django-q2 worker process runs under
cProfile and writes its statistics to that folder now and then, between tasks."""

from __future__ import annotations

import cProfile
import os
import time
from typing import Any

from django.apps import AppConfig


class ProfilingConfig(AppConfig):
    name = "bench"
    label = "bench_profiling"

    def ready(self) -> None:
        from django_q.signals import post_spawn, pre_execute

        folder = os.environ["BENCH_PROFILE_DIR"]
        profiler = cProfile.Profile()
        dumped = [0.0]

        def profile_worker(sender: Any, **kwargs: Any) -> None:
            profiler.enable()

        def dump_now_and_then(sender: Any, **kwargs: Any) -> None:
            # Dumping stops the profiler, so it is started again.
            if time.monotonic() - dumped[0] > 2:
                dumped[0] = time.monotonic()
                profiler.dump_stats(os.path.join(folder, f"worker-{os.getpid()}.prof"))
                profiler.enable()

        post_spawn.connect(profile_worker, weak=False)
        pre_execute.connect(dump_now_and_then, weak=False)
