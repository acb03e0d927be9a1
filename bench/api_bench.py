"""The job list and a job's detail under load, with 1,000 and with 100,000 jobs in the database.

    .venv/bin/python bench/api_bench.py --database postgres --jobs 1000 100000

Jobs (succeeded, each with its history and its charge) are seeded in bulk into a fresh
database; gunicorn serves the API (3 processes of 4 threads); 16 client threads, each with its
own keep-alive connection, ask for the same kind of page for --seconds; p50 and p99 latencies
are printed for the first page of the list, a page 50 pages deep (by its cursor) and the
detail of random jobs, with the API's request throttles lifted. The load generator runs on the
same machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import machine, percentile, platform

# The API's per-user and per-team request rates are a policy, not a cost: lifted, so that what
# is measured is the server's time a request.
NO_THROTTLES = {
    f"API_THROTTLE_{scope}": "1000000/min" for scope in ("USER", "TEAM", "JOB_READ", "TOKEN")
}

SEED_JOBS = """
import datetime, uuid
from decimal import Decimal
from django.utils import timezone
from billing.models import EntryKind, LedgerEntry
from videos.models import GenerationJob, JobEvent, Project
project = Project.objects.get(name="Bench")
start = timezone.now() - datetime.timedelta(days=30)
ids = []
for first in range(0, {count}, 5000):
    jobs = [
        GenerationJob(
            id=uuid.uuid4(), team_id=project.team_id, project=project, kind="text_to_video",
            prompt_text=f"Scene {{n}}", state="succeeded", estimated_cost_usd=Decimal("0.28"),
            state_reason="Stored and probed; charged $0.28.", finished_at=start,
        )
        for n in range(first, min(first + 5000, {count}))
    ]
    GenerationJob.objects.bulk_create(jobs)
    JobEvent.objects.bulk_create(
        event
        for job in jobs
        for event in (
            JobEvent(job=job, from_state="", to_state="queued", reason="Created"),
            JobEvent(job=job, from_state="retrieving", to_state="succeeded", reason="Stored"),
        )
    )
    LedgerEntry.objects.bulk_create(
        LedgerEntry(project=project, job=job, kind=EntryKind.CHARGE, amount=Decimal("0.28"))
        for job in jobs
    )
    ids.extend(str(job.pk) for job in jobs[:20])
from django.db import connection
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
result = ids
"""


def load(urls: list[str], headers: dict[str, str], seconds: float, clients: int) -> list[float]:
    """Ask for `urls` (in turn) from `clients` threads for `seconds`; every latency, in s."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        http = requests.Session()
        mine: list[float] = []
        n = offset
        while time.monotonic() < stop:
            started = time.perf_counter()
            answer = http.get(urls[n % len(urls)], headers=headers, timeout=60)
            mine.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text[:200]
            n += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    options = parser.parse_args()
    print(f"Machine: {machine()}", flush=True)
    for count in options.jobs:
        with platform(
            options.database, web_workers=3, start_worker=False, env=NO_THROTTLES
        ) as plat:
            seeded = time.monotonic()
            ids = plat.shell(SEED_JOBS.format(count=count))
            seed_seconds = time.monotonic() - seeded
            jobs_url = plat.web_url + "/api/v1/jobs/"
            page = jobs_url + "?page_size=20"
            deep = page
            for _ in range(50):
                deep = requests.get(deep, headers=plat.auth, timeout=60).json()["next"] or deep
            details = [jobs_url + job_id + "/" for job_id in random.sample(ids, min(20, len(ids)))]
            load([page], plat.auth, 2, options.clients)  # warm up
            for name, urls in (
                ("list, first page", [page]),
                ("list, page 51   ", [deep]),
                ("job detail      ", details),
            ):
                latencies = load(urls, plat.auth, options.seconds, options.clients)
                print(
                    f"  {options.database}, {count:>7,} jobs (seeded in {seed_seconds:.0f} s), "
                    f"{name}: p50 {percentile(latencies, 0.5) * 1000:7.1f} ms, "
                    f"p99 {percentile(latencies, 0.99) * 1000:7.1f} ms, "
                    f"{len(latencies) / options.seconds:6.1f} req/s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
