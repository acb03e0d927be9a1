"""The benchmarks still run: a few jobs through the orchestration benchmark, the platform started
in processes of its own exactly as `make bench` starts it (production settings, gunicorn,
qcluster, the simulator), so a change that breaks the harness fails here, not at the next
measurement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_orchestration_benchmark_runs_jobs_to_the_end():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    command = ["bench/orchestration_bench.py", "--database", "sqlite", "--jobs", "5", "--json"]
    printed = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert printed.returncode == 0, printed.stderr[-3000:]
    figures = json.loads(printed.stdout.strip().splitlines()[-1])
    assert (figures["jobs"], figures["succeeded"], figures["create_task_per_job"]) == (5, 5, 1.0)
    assert figures["statements_per_job"] > 0 and figures["cpu_ms_per_job"] > 0
