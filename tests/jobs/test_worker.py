"""The pipeline with a real django-q2 `qcluster` process, and what happens when it is killed."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dj_database_url
import pytest
from django.db import connection
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Task

from tests.fixtures.platform import FAST_PIPELINE
from tests.fixtures.waiting import eventually
from videos import jobs
from videos.models import GenerationJob, JobState, Kind

ROOT = Path(__file__).resolve().parents[2]
S = JobState
pytestmark = pytest.mark.e2e


def database_url() -> str:
    """The test database (not the one the settings name) as a URL a worker process can use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    base = dj_database_url.parse(os.environ["DATABASE_URL"])
    user = base.get("USER") or ""
    auth = f"{user}:{base.get('PASSWORD')}@" if base.get("PASSWORD") else f"{user}@"
    return f"postgres://{auth}{base.get('HOST')}:{base.get('PORT') or 5432}/{db['NAME']}"


class Worker:
    """A `manage.py qcluster` process in its own process group, configured like the test."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=15)


@pytest.fixture
def worker_env(platform: Any, media_root: Path) -> dict[str, str]:
    sim = platform.simulator
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "Q_SYNC": "false",
        "Q_WORKERS": "1",
        "MEDIA_ROOT": str(media_root),
        "KIE_API_KEY": sim.api_key,
        "KIE_BASE_URL": sim.base_url,
        "KIE_UPLOAD_BASE_URL": sim.upload_base_url,
        "KIE_WEBHOOK_HMAC_KEY": sim.hmac_key or "",
        "PUBLIC_BASE_URL": platform.url,
        "JOB_CALLBACK_GRACE_SECONDS": str(FAST_PIPELINE["CALLBACK_GRACE_SECONDS"]),
        "JOB_POLL_INITIAL_SECONDS": str(FAST_PIPELINE["POLL_INITIAL_SECONDS"]),
        "KIE_CREDITS_CACHE_SECONDS": "0",
    }
    return env


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path, monkeypatch: Any) -> Iterator[Any]:
    # This process enqueues into the real broker instead of running tasks itself.
    monkeypatch.setattr(Conf, "SYNC", False)
    from django_q.brokers import get_broker

    get_broker().purge_queue()
    workers: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker({**worker_env, **env}, tmp_path / "qcluster.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.kill()


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
        # until the new worker has run it to the end. (Redis's broker never hands it over; the
        # sweep below is what recovers the job there.)
        eventually(
            lambda: Task.objects.filter(name=f"submit-{job.pk}").exists(),
            timeout=60,
            interval=0.2,
            failure="the killed worker's submission was never run again",
        )
    job.refresh_from_db()
    assert job.state == S.SUBMITTING
    assert platform.simulator.stats()["create_task_calls"] == 1

    settings.PIPELINE = {**settings.PIPELINE, "STALE_STEP_SECONDS": 1}
    jobs.sweep(now=timezone.now() + datetime.timedelta(seconds=2))
    job.refresh_from_db()
    assert job.state == S.NEEDS_ATTENTION
    assert "not sent again" in job.state_reason
    assert platform.simulator.stats()["create_task_calls"] == 1


def test_a_callback_adopts_the_job_of_a_killed_worker(platform, project, start_worker):
    job = _kill_while_create_task_is_answering(platform, project, start_worker)
    platform.simulator.wait_for_stats(lambda s: s["callbacks_delivered"] >= 1, timeout=30)
    start_worker()  # picks up the callback the view queued
    job = platform.wait_for(job, timeout=60)
    assert job.provider_task_id
    assert platform.simulator.stats()["create_task_calls"] == 1
