"""Many processes, as on many hosts: two gunicorn web processes and two `qcluster` workers,
each in its own working directory, sharing only PostgreSQL, Redis (broker and cache) and an
S3-compatible server. Fifty jobs made through both web processes all succeed exactly once,
both workers take some, and killing one worker mid-run loses nothing.

It needs PostgreSQL and Redis (DATABASE_URL=postgres://... REDIS_URL=redis://...); on the
embedded defaults it is skipped, saying so."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from django_q.conf import Conf

from billing.models import Budget, EntryKind, LedgerEntry
from tests.fixtures.data import make_member
from tests.fixtures.platform import point_settings_at
from tests.fixtures.processes import Qcluster, Web, production_env
from tests.fixtures.simulator import SimulatorHandle
from tests.fixtures.waiting import eventually
from videos import services
from videos.models import GenerationJob, JobEvent, JobState, Project, Role
from videos.simulator import KieSimulator, RenderSettings, SimulatorConfig

pytestmark = pytest.mark.e2e
JOBS = 50
S = JobState


@pytest.fixture
def shared_services(transactional_db: None) -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis: DATABASE_URL=postgres://... REDIS_URL=redis://...")


@pytest.fixture
def simulator() -> Iterator[SimulatorHandle]:
    # Renders take a few seconds, so the run is still going when a worker is killed.
    sim = KieSimulator(
        SimulatorConfig(
            port=0,
            api_key="many-hosts-kie-key",
            hmac_key="many-hosts-webhook-key",
            task_seconds=2.0,
            render=RenderSettings(long_side=160, fps=12),
            allow_control=True,
            callback_timeout=5.0,
        )
    ).start()
    yield SimulatorHandle(sim)
    sim.stop()


@pytest.fixture
def cluster(
    shared_services: None,
    simulator: SimulatorHandle,
    s3_server: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    bucket = s3_server.new_bucket()
    # This process reads results and runs the sweep as the schedule would: same services.
    s3_server.use_for_storage(settings, bucket)
    monkeypatch.setattr(Conf, "SYNC", False)
    from django_q.brokers import get_broker

    get_broker().purge_queue()

    common = production_env(
        # One key everywhere: it signs sessions and every task on the broker (this process's
        # sweep enqueues too), and a worker drops a task signed with another key.
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1",
        KIE_USE_SIMULATOR="true",
        KIE_API_KEY=simulator.api_key,
        KIE_BASE_URL=simulator.base_url,
        KIE_UPLOAD_BASE_URL=simulator.upload_base_url,
        KIE_WEBHOOK_HMAC_KEY=simulator.hmac_key or "",
        # The simulator calls back over plain HTTP, with no TLS proxy in between.
        SECURE_SSL_REDIRECT="false",
        KIE_RATE_LIMIT_TASKS="100",
        KIE_CREDITS_CACHE_SECONDS="0",
        JOB_CALLBACK_GRACE_SECONDS="3",
        JOB_POLL_INITIAL_SECONDS="1",
        JOB_POLL_MAX_SECONDS="2",
        # A dead worker's steps (a download, a callback it was handed) are taken up again this
        # long after it stopped (30 s in production).
        JOB_STEP_LEASE_SECONDS="5",
        JOB_STALE_STEP_SECONDS="8",
        Q_WORKERS="2",
        LOG_FORMAT="json",
        **s3_server.env(bucket),
    )
    processes: list[Any] = []

    def start(process_type: Any, name: str, **env: str) -> Any:
        process = process_type(
            env={**common, **env}, cwd=tmp_path / name, log=tmp_path / f"{name}.log"
        )
        processes.append(process)
        return process

    try:
        webs = [start(Web, "web-1"), start(Web, "web-2")]
        # Each worker gives the provider a different web process to call back.
        workers = [
            start(Qcluster, name, PUBLIC_BASE_URL=web.url, MEDIA_ROOT=str(tmp_path / name / "m"))
            for name, web in (("worker-a", webs[0]), ("worker-b", webs[1]))
        ]
        point_settings_at(
            settings,
            simulator,
            webs[0].url,
            STALE_STEP_SECONDS=8,
            STEP_LEASE_SECONDS=5,
            CALLBACK_GRACE_SECONDS=3,
        )
        yield {"webs": webs, "workers": workers, "simulator": simulator}
    finally:
        for process in processes:
            process.stop(signal.SIGKILL)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return lines


def jobs_taken(worker: Qcluster) -> set[str]:
    """The jobs this worker ran a task for, from its own log."""
    return set(re.findall(r"processing (?:submit|retrieve)-([0-9a-f-]{36})", worker.output()))


def test_two_web_and_two_worker_processes_share_fifty_jobs_and_survive_a_killed_worker(
    cluster, team
):
    webs, workers, simulator = cluster["webs"], cluster["workers"], cluster["simulator"]
    maya = make_member("maya", team, Role.EDITOR)
    project = Project.objects.create(team=team, name="Fifty shots")
    Budget.objects.create(project=project, monthly_cap_usd=Decimal("100.00"))
    _, key = services.api_token_create(user=maya, name="load")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"

    # Half the load through each web process, each half in one request, so that the kill
    # below finds a run in full swing whatever the machine's speed (posted one by one, early
    # jobs would finish while later ones were still being posted).
    started = time.monotonic()
    half = JOBS // 2
    for n, web in enumerate(webs):
        answer = http.post(
            f"{web.url}/api/v1/jobs/batch/",
            json={
                "jobs": [
                    {
                        "project": project.pk,
                        "kind": "text_to_video",
                        "prompt": f"Shot {n * half + i}: lanterns drift over a lake",
                        "duration": 5,
                    }
                    for i in range(half)
                ]
            },
            headers={"X-Request-ID": f"load-{n:04d}-request"},
            timeout=60,
        )
        assert answer.status_code == 201, answer.text
    ids = set(GenerationJob.objects.values_list("pk", flat=True))
    assert len(ids) == JOBS

    # Mid-run: every job is past submission (a worker killed while sending createTask leaves
    # a job only a person may resolve, by design), worker B has taken some, many are unfinished.
    def mid_run() -> bool:
        states = Counter(GenerationJob.objects.values_list("state", flat=True))
        return (
            states[S.QUEUED] + states[S.SUBMITTING] == 0
            and bool(jobs_taken(workers[1]))
            and states[S.SUCCEEDED] <= JOBS - 10
        )

    eventually(
        mid_run,
        timeout=60,
        interval=0.05,
        failure=lambda: (
            "never mid-run: " + str(Counter(GenerationJob.objects.values_list("state", flat=True)))
        ),
    )
    unfinished_at_kill = JOBS - GenerationJob.objects.filter(state=S.SUCCEEDED).count()
    workers[1].stop(signal.SIGKILL)

    # Nothing here steps in: the surviving worker's job clock takes up what the dead one held
    # (a retrieval once its lease runs out, a poll whose callback task was lost) by itself.
    def all_succeeded() -> bool:
        return GenerationJob.objects.filter(state=S.SUCCEEDED).count() == JOBS

    eventually(
        all_succeeded,
        timeout=120,
        interval=1.0,
        failure=lambda: (
            "not all succeeded: "
            + str(Counter(GenerationJob.objects.values_list("state", flat=True)))
            + str(
                [
                    (
                        j.pk,
                        j.state_reason,
                        j.retrieve_after,
                        j.retrieve_attempts,
                        j.updated,
                        list(j.events.values_list("to_state", "reason", "created")),
                    )
                    for j in GenerationJob.objects.exclude(state=S.SUCCEEDED)
                ]
            )
            + " now "
            + str(time.time())
        ),
    )
    elapsed = time.monotonic() - started

    # Exactly once: one createTask, one success, one charge and one stored clip a job.
    assert simulator.stats()["create_task_calls"] == JOBS
    successes = Counter(
        JobEvent.objects.filter(to_state=S.SUCCEEDED).values_list("job_id", flat=True)
    )
    assert set(successes) == ids and set(successes.values()) == {1}
    charges = Counter(
        LedgerEntry.objects.filter(kind=EntryKind.CHARGE).values_list("job_id", flat=True)
    )
    assert set(charges) == ids and set(charges.values()) == {1}
    for job in GenerationJob.objects.select_related("asset"):
        assert job.asset.file.storage.exists(job.asset.file.name)

    # Both workers took some; worker A finished what B left.
    taken_a, taken_b = jobs_taken(workers[0]), jobs_taken(workers[1])
    assert taken_a and taken_b, (len(taken_a), len(taken_b))

    # Both web processes took callbacks, with the per-job tokens kept out of the logs.
    tokens = set(GenerationJob.objects.values_list("callback_token", flat=True))
    for web in webs:
        log = web.output()
        assert "/callbacks/kie/" in log and "[redacted]" in log
        assert not any(token in log for token in tokens)

    # A request's id reaches the worker task it enqueued.
    worker_ids = {
        line.get("request_id")
        for worker in workers
        for line in json_lines(worker.output())
        if line.get("logger") == "reelforge.tasks"
    }
    assert any(str(rid).startswith("load-") for rid in worker_ids), sorted(worker_ids)[:5]

    print(
        f"\n{JOBS} jobs in {elapsed:.1f} s; {unfinished_at_kill} unfinished when worker B was "
        f"killed; jobs worker A ran tasks for: {len(taken_a)}, worker B: {len(taken_b)}"
    )
