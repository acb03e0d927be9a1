"""The pipeline with a real django-q2 `qcluster` process, and what happens when it is killed."""

from __future__ import annotations

import datetime
import signal
import time
from typing import Any

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from tests.fixtures.waiting import eventually
from videos import jobs
from videos.models import GenerationJob, JobState, Kind

S = JobState
pytestmark = pytest.mark.e2e


def create(project: Any) -> GenerationJob:
    return jobs.job_create(
        project=project, by=None, kind=Kind.TEXT_TO_VIDEO, prompt="Lanterns over a lake"
    )


def test_a_real_worker_takes_a_job_from_queue_to_stored_clip(platform, project, start_worker):
    worker = start_worker()
    job = create(project)
    job = platform.wait_for(job, timeout=60)
    assert job.asset.file.size == job.asset.size_bytes
    assert worker.process.poll() is None, worker.log.read_text()


def test_a_real_worker_polls_a_job_whose_callback_is_lost_without_waiting_for_the_sweep(
    platform, project, start_worker
):
    platform.simulator.set_faults(lost_callback=1)
    start_worker(JOB_CLOCK_SECONDS="0.2")
    started = time.monotonic()
    job = platform.wait_for(create(project), timeout=20)
    # The sweep's first run is 30 s or more away; the job's own poll came 1 s after it was sent.
    assert time.monotonic() - started < 20
    assert job.asset is not None


# A short task timeout: the ORM broker hands a task whose worker died to another worker once
# `retry` (timeout + margin) has passed, which is what the re-delivery check waits for.
# Downloads must end within the task timeout (a start-up check), so they are shortened too.
SHORT_RETRY = {
    "Q_TASK_TIMEOUT_SECONDS": "3",
    "Q_RETRY_MARGIN_SECONDS": "1",
    "RESULT_DOWNLOAD_TIMEOUT_SECONDS": "1",
    "RESULT_CONNECT_TIMEOUT_SECONDS": "0.5",
    "RESULT_READ_TIMEOUT_SECONDS": "1",
}


def _kill_while_create_task_is_answering(
    platform: Any, project: Any, start_worker: Any
) -> GenerationJob:
    platform.simulator.set_faults(slow={"rate": 1, "endpoints": ["createTask"]}, slow_seconds=5)
    worker = start_worker(**SHORT_RETRY)
    job = create(project)
    platform.simulator.wait_for_stats(lambda s: s["create_task_calls"] == 1, timeout=60)
    worker.kill(signal.SIGKILL)  # the provider has the task; the worker never saw the answer
    job.refresh_from_db()
    assert job.state == S.SUBMITTING
    assert job.provider_task_id is None
    return job


def test_a_worker_killed_mid_submission_leaves_a_job_that_needs_attention(
    platform, project, start_worker, settings
):
    platform.simulator.set_faults(lost_callback=1)
    job = _kill_while_create_task_is_answering(platform, project, start_worker)

    start_worker(**SHORT_RETRY)  # gets the killed worker's task again, and must not resend it
    if "orm" in settings.Q_CLUSTER:
        # The ORM broker hands the killed worker's task over once `retry` (4 s) has passed: wait
        # until the new worker has run it to the end and acknowledged it (its queue row goes).
        # (Redis's broker never hands it over; the sweep below is what recovers the job there.)
        eventually(
            lambda: not any(row.name() == f"submit-{job.pk}" for row in OrmQ.objects.all()),
            timeout=60,
            interval=0.2,
            failure="the killed worker's submission was never run again",
        )
    job.refresh_from_db()
    assert job.state == S.SUBMITTING
    assert platform.simulator.stats()["create_task_calls"] == 1

    # Stale: the sweep hands it to the worker, which settles it.
    settings.PIPELINE = {**settings.PIPELINE, "SUBMIT_STALE_SECONDS": 1}
    assert jobs.sweep(now=timezone.now() + datetime.timedelta(seconds=2))["submissions_recovered"]
    job = platform.wait_for(job, [S.NEEDS_ATTENTION])
    assert "not sent again" in job.state_reason
    assert platform.simulator.stats()["create_task_calls"] == 1


def test_a_callback_adopts_the_job_of_a_killed_worker(platform, project, start_worker):
    job = _kill_while_create_task_is_answering(platform, project, start_worker)
    platform.simulator.wait_for_stats(lambda s: s["callbacks_delivered"] >= 1, timeout=30)
    start_worker()  # picks up the callback the view queued
    job = platform.wait_for(job, timeout=60)
    assert job.provider_task_id
    assert platform.simulator.stats()["create_task_calls"] == 1
