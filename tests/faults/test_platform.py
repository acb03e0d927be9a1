"""The platform's own parts misbehave: its storage goes away, its workers are killed, many
requests race for the last dollars of a budget. Real processes throughout: a `qcluster`, the
live web server, the simulator, an S3-compatible server (moto's) that is stopped and started.

Scaled like the provider scenarios: an outage lasts 10 s instead of a minute, and the pipeline's
back-offs and leases are a second or a few (`running.FAST_WORKER`). Every scenario ends with
`assert_nothing_lost` and prints its figures (`pytest -m faults -s`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.db import connection
from rest_framework.authtoken.models import Token

from billing.models import Budget
from billing.selectors import price_for, project_money
from tests.faults.invariants import Stopwatch, assert_nothing_lost
from tests.faults.running import queue, states, wait_settled
from tests.fixtures.s3 import S3Server, free_port
from tests.fixtures.waiting import eventually
from videos.models import GenerationJob, JobState

S = JobState
pytestmark = [pytest.mark.faults, pytest.mark.e2e]

OUTAGE_SECONDS = 10


class StoppableS3:
    """An S3-compatible server of this scenario's own, stopped and started on the same port (moto
    keeps its buckets in this process, so they outlive a restart as a real store's would)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: Any = None
        self.start()

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def handle(self) -> S3Server:
        return S3Server(endpoint_url=f"http://127.0.0.1:{self.port}")


@pytest.fixture
def stoppable_s3() -> Iterator[StoppableS3]:
    s3 = StoppableS3()
    yield s3
    s3.stop()


def test_a_storage_outage_holds_retrievals_until_storage_returns(
    platform, roomy_project, fault_worker, stoppable_s3, settings
):
    sim = platform.simulator
    store = stoppable_s3.handle
    bucket = store.new_bucket()
    store.use_for_storage(settings, bucket)  # this process checks what the worker stored
    worker = fault_worker(**store.env(bucket))

    before = queue(roomy_project, 4)
    wait_settled(timeout=60, worker=worker)
    assert states() == {S.SUCCEEDED: 4}, "storage worked before the outage"

    stoppable_s3.stop()
    outage = Stopwatch()
    during = queue(roomy_project, 6)
    ids = [job.pk for job in during]

    def all_waiting_for_storage() -> bool:
        # Every clip is ready and each retrieval has failed at least once against the dead store.
        waiting = GenerationJob.objects.filter(
            pk__in=ids, state=S.RETRIEVING, retrieve_attempts__gt=0
        )
        return waiting.count() == len(ids)

    eventually(all_waiting_for_storage, timeout=OUTAGE_SECONDS + 20, interval=0.2)
    time.sleep(max(OUTAGE_SECONDS - outage.seconds(), 0))  # the outage's length is the point
    failures = sum(
        GenerationJob.objects.filter(pk__in=ids).values_list("retrieve_attempts", flat=True)
    )
    stoppable_s3.start()
    back = Stopwatch()
    wait_settled(timeout=60, worker=worker)
    recovered = back.seconds()

    assert states() == {S.SUCCEEDED: len(before) + len(during)}
    # No object left half-written became a clip: each stored file is whole (checked again by
    # assert_nothing_lost) and there is one object per clip and poster.
    keys = [item["Key"] for item in store.client().list_objects_v2(Bucket=bucket)["Contents"]]
    clips = [key for key in keys if key.endswith(".mp4")]
    assert len(clips) == len(before) + len(during)
    assert recovered < 30, f"stored {recovered} s after storage returned"
    assert_nothing_lost(
        sim,
        "storage outage",
        outage_s=OUTAGE_SECONDS,
        failed_attempts=failures,
        recovered_s=recovered,
    )


def test_a_worker_killed_mid_submit_and_mid_download_is_taken_over_after_a_restart(
    platform, roomy_project, fault_worker
):
    sim = platform.simulator
    # Two createTasks answer late and two result files start late, so that when the worker is
    # killed, two of its processes are inside createTask and two inside a download. Callbacks
    # are lost: a callback would adopt a job whose createTask answer never came, and this is
    # about the case where none does.
    sim.set_faults(
        slow={"rate": 1, "times": 2, "endpoints": ["createTask"]},
        slow_result={"rate": 1, "times": 2},
        slow_seconds=8,
        lost_callback=1,
    )
    # A createTask may take up to 11 s here (8 s late, within the timeouts); a job submitting
    # for longer than 12 s lost its worker.
    recovering = {
        "KIE_CONNECT_TIMEOUT": "1",
        "KIE_READ_TIMEOUT": "10",
        "JOB_SUBMIT_STALE_SECONDS": "12",
    }
    worker = fault_worker(Q_WORKERS="4", **recovering)
    queue(roomy_project, 8)

    def both_in_the_middle() -> bool:
        faults = sim.stats()["faults"]
        return faults.get("slow", 0) == 2 and faults.get("slow_result", 0) >= 1

    eventually(both_in_the_middle, timeout=60, interval=0.1)
    killed = {state: n for state, n in states().items() if state in (S.SUBMITTING, S.RETRIEVING)}
    worker.kill(signal.SIGKILL)
    assert killed.get(S.SUBMITTING) == 2 and killed.get(S.RETRIEVING, 0) >= 1, killed

    time.sleep(2)  # the host restarts its process manager
    restarted = fault_worker(Q_WORKERS="4", **recovering)
    watch = Stopwatch()
    wait_settled(timeout=60, worker=restarted)
    recovered = watch.seconds()

    # The two whose createTask answer died with the worker may exist at the provider, and
    # kie.ai cannot be asked: a person decides, and they are never sent twice. The interrupted
    # downloads are taken over once their lease runs out.
    assert states() == {S.SUCCEEDED: 6, S.NEEDS_ATTENTION: 2}
    for job in GenerationJob.objects.filter(state=S.NEEDS_ATTENTION):
        assert "not sent again" in job.state_reason
    figures = assert_nothing_lost(
        sim,
        "worker killed mid-submit and mid-download",
        killed_in=killed,
        recovered_s=recovered,
    )
    assert figures.create_task_calls == 8  # nothing was sent twice
    assert recovered < 60


def test_twenty_requests_and_two_workers_never_overspend_a_nearly_exhausted_budget(
    platform, project, alice, fault_worker
):
    sim = platform.simulator
    price = price_for(duration=5, sound=False, provider="kie").usd
    # Room for three clips and a half: three requests of twenty may pass.
    cap = project_money(project).committed_usd + price * Decimal("3.5")
    Budget.objects.filter(project=project).update(monthly_cap_usd=cap)
    worker = fault_worker()
    token = Token.objects.create(user=alice).key
    start = threading.Barrier(20)
    answers: list[int] = []

    def create() -> None:
        start.wait()
        response = requests.post(
            f"{platform.url}/api/v1/jobs/",
            json={
                "project": project.pk,
                "kind": "text_to_video",
                "prompt": "A lighthouse in a storm",
                "duration": 5,
                "sound": False,
            },
            headers={"Authorization": f"Token {token}"},
            timeout=60,
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    # Exactly the three the budget can hold; the rest refused with the budget's error.
    assert sorted(answers) == [201] * 3 + [402] * 17, sorted(answers)
    wait_settled(timeout=60, worker=worker)
    assert states() == {S.SUCCEEDED: 3}
    money = project_money(project)
    assert money.spent_usd == price * 3 and money.reserved_usd == 0
    assert_nothing_lost(sim, "budget race", requests=20, accepted=3, cap_usd=cap)


def restart_postgresql() -> float:
    """Restart this machine's PostgreSQL cluster (every connection to it is cut); returns the
    seconds it was away."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    watch = Stopwatch()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return watch.seconds()


def test_postgresql_restarted_under_load_loses_no_job(platform, roomy_project, fault_worker):
    if connection.vendor != "postgresql":
        pytest.skip("restarts PostgreSQL: DATABASE_URL=postgres://...")
    if not (shutil.which("pg_ctlcluster") and os.path.isdir("/etc/postgresql")):
        pytest.skip("needs Debian's pg_ctlcluster to restart the local cluster")
    sim = platform.simulator
    sim.set_faults(rate_limit=8, rate_window=2)  # so that the restart lands mid-batch
    worker = fault_worker(KIE_RATE_LIMIT_TASKS="8", KIE_RATE_LIMIT_WINDOW_SECONDS="2")
    queue(roomy_project, 24)
    eventually(
        lambda: GenerationJob.objects.filter(state=S.SUCCEEDED).count() >= 4,
        timeout=60,
        interval=0.2,
    )
    on_their_way = sum(n for state, n in states().items() if state != S.SUCCEEDED)
    away = restart_postgresql()
    connection.close()  # this process's connection was cut with the others
    back = Stopwatch()
    wait_settled(timeout=90, worker=worker)
    recovered = back.seconds()
    assert states() == {S.SUCCEEDED: 24}
    # The worker met the database's absence (its clock ticks every 0.2 s) and went on.
    assert "OperationalError" in worker.log.read_text(errors="replace")
    assert_nothing_lost(
        sim,
        "PostgreSQL restarted under load",
        on_their_way=on_their_way,
        restart_s=away,
        recovered_s=recovered,
    )
