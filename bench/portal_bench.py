"""The portal's dashboard and project page with 10,000 jobs in one project: server time.

    .venv/bin/python bench/portal_bench.py [--jobs 10000] [--requests 60]

A fresh SQLite database (a temporary file) is migrated and seeded in bulk: jobs in every state,
each succeeded one with its clip row and its charge. Then a signed-in owner asks for each page
--requests times through Django's test client, in this process (no network, so the figure is
the server's own time: middleware, views, queries and templates), and p50 / p95 / p99 are
printed with the number of SQL statements a page takes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import machine, percentile

SEED = 5000


def seed(count: int) -> tuple[object, object]:
    import datetime
    import uuid
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from billing.models import Budget, EntryKind, LedgerEntry, Price
    from billing.price_list import seed_kling_26_prices
    from videos import services
    from videos.models import Asset, GenerationJob, JobEvent, JobState

    seed_kling_26_prices(Price)
    owner = get_user_model().objects.create_user("owner", password="bench-pw-1")
    team = services.team_create(name="Bench", slug="bench", owner=owner)
    project = services.project_create(team=team, name="Bench")
    Budget.objects.create(project=project, monthly_cap_usd=Decimal("100000"))
    states = [JobState.SUCCEEDED] * 7 + [JobState.FAILED, JobState.CANCELED, JobState.QUEUED]
    start = timezone.now() - datetime.timedelta(days=20)
    for first in range(0, count, SEED):
        jobs = [
            GenerationJob(
                id=uuid.uuid4(),
                team=team,
                project=project,
                kind="text_to_video",
                prompt_text=f"Scene {n}: a paper boat on a rainy street",
                state=states[n % len(states)],
                state_reason="Stored." if n % 10 < 7 else "The provider refused it.",
                estimated_cost_usd=Decimal("0.28"),
                finished_at=start + datetime.timedelta(minutes=n),
            )
            for n in range(first, min(first + SEED, count))
        ]
        GenerationJob.objects.bulk_create(jobs)
        JobEvent.objects.bulk_create(
            JobEvent(job=job, from_state="", to_state="queued", reason="Created") for job in jobs
        )
        done = [job for job in jobs if job.state == JobState.SUCCEEDED]
        Asset.objects.bulk_create(
            Asset(
                job=job,
                file=f"clips/{job.pk}.mp4",
                poster=f"clips/{job.pk}.jpg",
                sha256="0" * 64,
                size_bytes=80_000,
                duration_s=5.0,
                width=320,
                height=180,
                fps=24.0,
                has_audio=False,
            )
            for job in done
        )
        LedgerEntry.objects.bulk_create(
            LedgerEntry(project=project, job=job, kind=EntryKind.CHARGE, amount=Decimal("0.28"))
            for job in done
        )
    return owner, project


def measure(client: object, url: str, times: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    durations = []
    statements = 0
    for _ in range(times):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)  # type: ignore[attr-defined]
            durations.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        statements = len(queries)
    return durations, statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    options = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="reelforge-portal-bench-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY="portal-benchmark-only",
        ALLOWED_HOSTS="testserver",
        KIE_USE_SIMULATOR="true",
        DATABASE_URL=f"sqlite:///{folder}/bench.sqlite3",
        MEDIA_ROOT=f"{folder}/media",
        SECURE_SSL_REDIRECT="false",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # hashed names, as served
    started = time.monotonic()
    owner, project = seed(options.jobs)
    print(f"Seeded {options.jobs} jobs in {time.monotonic() - started:.1f} s")
    client = Client()
    client.force_login(owner)  # type: ignore[arg-type]
    pages = {
        "dashboard": "/",
        "project page": f"/projects/{project.pk}/",  # type: ignore[attr-defined]
        "live job list (htmx)": f"/projects/{project.pk}/jobs/",  # type: ignore[attr-defined]
        "spend": "/spend/",
    }
    print(f"Machine: {machine()}")
    for name, url in pages.items():
        measure(client, url, 3)  # warm: templates compiled, caches filled
        durations, statements = measure(client, url, options.requests)
        print(
            f"  {name} ({options.jobs} jobs): p50 {percentile(durations, 0.5) * 1000:.1f} ms, "
            f"p95 {percentile(durations, 0.95) * 1000:.1f} ms, "
            f"p99 {percentile(durations, 0.99) * 1000:.1f} ms, {statements} statements"
        )


if __name__ == "__main__":
    main()
