"""Every benchmark, one after the other, then one table of what each printed (`make bench`).

    .venv/bin/python bench/run_all.py [--quick]

--quick runs each with small counts (a smoke test of the benchmarks, minutes instead of half
an hour). PostgreSQL and Redis are used at BENCH_PG_URL and BENCH_REDIS_URL (see harness.py);
the PostgreSQL runs are skipped when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import PG_URL, PYTHON, ROOT, machine

FULL = [
    (
        "orchestration, SQLite + ORM broker",
        ["orchestration_bench.py", "--database", "sqlite", "--jobs", "100", "1000"],
    ),
    (
        "orchestration, PostgreSQL + Redis",
        ["orchestration_bench.py", "--database", "postgres", "--jobs", "100", "1000"],
    ),
    ("naive 16-thread client", ["naive_bench.py", "--jobs", "1000"]),
    (
        "callbacks lost: polling only",
        [
            "orchestration_bench.py",
            "--database",
            "postgres",
            "--jobs",
            "100",
            "--lost-callbacks",
            "--env",
            "JOB_CALLBACK_GRACE_SECONDS=5",
        ],
    ),
    (
        "provider rate limit 20 / 10 s",
        ["orchestration_bench.py", "--database", "postgres", "--jobs", "1000", "--provider-limit"],
    ),
    (
        "API under 16 clients",
        ["api_bench.py", "--database", "postgres", "--jobs", "1000", "100000"],
    ),
    ("retrieval of 1 GB", ["retrieval_bench.py", "--megabytes", "1024"]),
    ("portal at 10,000 jobs", ["portal_bench.py", "--jobs", "10000", "--requests", "40"]),
    ("simulator", ["simulator_bench.py"]),
]
QUICK = [
    (
        "orchestration, SQLite + ORM broker",
        ["orchestration_bench.py", "--database", "sqlite", "--jobs", "20"],
    ),
    (
        "orchestration, PostgreSQL + Redis",
        ["orchestration_bench.py", "--database", "postgres", "--jobs", "20"],
    ),
    ("naive 16-thread client", ["naive_bench.py", "--jobs", "20"]),
    (
        "API under 16 clients",
        ["api_bench.py", "--database", "postgres", "--jobs", "1000", "--seconds", "2"],
    ),
    ("retrieval of 64 MB", ["retrieval_bench.py", "--megabytes", "64"]),
    ("portal at 1,000 jobs", ["portal_bench.py", "--jobs", "1000", "--requests", "10"]),
]


def postgres_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
        return True
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    with_postgres = postgres_reachable()
    rows: list[tuple[str, str]] = []
    for name, command in QUICK if options.quick else FULL:
        if not with_postgres and "postgres" in command:
            rows.append((name, "skipped: PostgreSQL not reachable"))
            continue
        print(f"== {name}: {' '.join(command)}", flush=True)
        started = time.monotonic()
        done = subprocess.run(
            [PYTHON, str(ROOT / "bench" / command[0]), *command[1:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        print(done.stdout, end="", flush=True)
        figures = [line.strip() for line in done.stdout.splitlines() if line.startswith("  ")]
        if done.returncode:
            figures = [
                f"FAILED ({done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode})"
            ]
        for line in figures:
            rows.append((name, line))
        rows.append((name, f"(took {time.monotonic() - started:.0f} s)"))
    print(f"\nMachine: {machine()}\n")
    print("| benchmark | figures |\n|---|---|")
    for name, line in rows:
        print(f"| {name} | {line} |")


if __name__ == "__main__":
    main()
