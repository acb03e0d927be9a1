"""Database queries a job costs over its whole life: a constant a job, whatever the batch size.

The life is driven in this thread (tasks run synchronously, and the provider's callback is
handed to the worker's entry point as the callback view would), so every query is counted.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Budget
from videos import jobs
from videos.models import GenerationJob, JobState, Kind

S = JobState
# Every query of a job's life, from its creation in a batch to its clip stored and charged,
# and what a batch costs beside its jobs.
QUERIES_PER_JOB = 25
FIXED_QUERIES = 20
# Not the application's statements: transaction control, and django-q2 saving task results
# (done by its monitor process in a cluster).
NOT_COUNTED = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")


def counted(sql: str) -> bool:
    return not sql.startswith(NOT_COUNTED) and '"django_q_' not in sql


def run_lifecycle(platform: Any, project: Any, count: int, settings: Any) -> int:
    """Create `count` jobs in one batch and take them to `succeeded`; returns the queries."""
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("1000"))
    # As in production: the provider's balance is read again every 30 s, not for every job.
    # No job waits for a slot here: waiting is the clock's business, not a job's cost.
    settings.PIPELINE = {
        **settings.PIPELINE,
        "CREDITS_CACHE_SECONDS": 30,
        "RATE_LIMIT_TASKS": 100,
        "MAX_IN_FLIGHT": 100,
    }
    platform.simulator.set_faults(lost_callback=1)  # the test delivers them itself
    specs = [
        jobs.job_prepare(project=project, kind=Kind.TEXT_TO_VIDEO, prompt=f"Scene {n}")
        for n in range(count)
    ]
    with CaptureQueriesContext(connection) as queries:
        created = jobs.jobs_queue(specs, by=None)
        platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
        for job in GenerationJob.objects.filter(pk__in=[j.pk for j in created]).values(
            "pk", "provider_task_id"
        ):
            jobs.job_handle_callback(
                job["pk"],
                {"task_id": job["provider_task_id"], "state": "success", "credits_consumed": "55"},
                verified=True,
            )
    states = set(
        GenerationJob.objects.filter(pk__in=[j.pk for j in created]).values_list("state", flat=True)
    )
    assert states == {S.SUCCEEDED}
    return sum(1 for query in queries.captured_queries if counted(query["sql"]))


def test_a_jobs_whole_life_costs_a_constant_number_of_queries(platform, project, settings):
    few, many = (
        run_lifecycle(platform, project, 5, settings),
        run_lifecycle(platform, project, 20, settings),
    )
    per_job = (many - few) / 15
    fixed = few - 5 * per_job  # a batch's and a hand-over's own, whatever their size
    assert per_job <= QUERIES_PER_JOB, f"{per_job:.1f} queries a job ({few} for 5, {many} for 20)"
    assert fixed <= FIXED_QUERIES, f"{fixed:.1f} queries beside the jobs' own"
