"""The provider misbehaves; a real `qcluster` runs the pipeline against the simulator over HTTP.

Scaled from the sizes a production account sees, so that the whole suite takes a few minutes:
the rate-limit storm is 60 jobs at 20 per 10 s (not 200: three windows of the limit
instead of ten, 20 s of sending instead of 90), an outage lasts 8 s instead of a minute, and the pipeline's
back-offs are a second or two (`running.FAST_WORKER`). Every scenario ends with
`assert_nothing_lost`, and prints its figures (`pytest -m faults -s`).
"""

from __future__ import annotations

import math
import time

import pytest
from django.utils import timezone

from tests.faults.invariants import Stopwatch, assert_nothing_lost
from tests.faults.running import queue, states, wait_settled
from tests.fixtures.waiting import eventually
from tests.jobs.test_reliability import signed_callback
from videos.models import GenerationJob, JobState, ProviderAccount

S = JobState
pytestmark = [pytest.mark.faults, pytest.mark.e2e]

STORM_JOBS, STORM_LIMIT, STORM_WINDOW = 60, 20, 10


def test_a_rate_limit_storm_is_sent_within_the_limit_and_finishes(
    platform, roomy_project, fault_worker
):
    sim = platform.simulator
    sim.set_faults(rate_limit=STORM_LIMIT, rate_window=STORM_WINDOW)
    # Four worker processes: with two, a window's 20 submissions queue behind the previous
    # window's downloads and the sending alone overruns the limit's pace.
    worker = fault_worker(
        Q_WORKERS="4",
        KIE_RATE_LIMIT_TASKS=str(STORM_LIMIT),
        KIE_RATE_LIMIT_WINDOW_SECONDS=str(STORM_WINDOW),
    )
    watch = Stopwatch()
    queue(roomy_project, STORM_JOBS)
    wait_settled(timeout=90, worker=worker)

    stats = sim.stats()
    assert {k: v for k, v in stats["rejected"].items() if k.endswith(":429")} == {}
    assert states() == {S.SUCCEEDED: STORM_JOBS}
    sent = sorted(GenerationJob.objects.values_list("submitted_at", flat=True))
    sending = (sent[-1] - sent[0]).total_seconds()
    # The last window opens (n - 1) windows after the first at best. Measured to its first job:
    # how long a window's jobs take to send is this machine's pace, not the limit's.
    minimum = (math.ceil(STORM_JOBS / STORM_LIMIT) - 1) * STORM_WINDOW
    last_window = (sent[-STORM_LIMIT] - sent[0]).total_seconds()
    offsets = [round((at - sent[0]).total_seconds(), 1) for at in sent]
    assert last_window <= 1.2 * minimum, f"the last window opened at {last_window:.1f} s: {offsets}"
    assert stats["create_task_calls"] == STORM_JOBS
    assert_nothing_lost(
        sim,
        "rate-limit storm",
        last_window_opened_s=round(last_window, 1),
        minimum_s=minimum,
        sending_s=round(sending, 1),
        all_done_s=watch.seconds(),
    )


def test_5xx_and_maintenance_for_a_while_then_healthy_finishes_every_job(
    platform, roomy_project, fault_worker
):
    sim = platform.simulator
    # Three answers in four are 500 or 455, on every endpoint (createTask, recordInfo, credit,
    # download-url) while the outage lasts.
    sim.set_faults(server_error=0.5, maintenance=0.5)
    worker = fault_worker()
    queue(roomy_project, 10)
    time.sleep(8)  # the outage: no evidence to wait for, its length is the point
    faults = sim.stats()["faults"]
    assert faults.get("server_error", 0) > 0 and faults.get("maintenance", 0) > 0
    sim.set_faults(server_error=0, maintenance=0)
    healthy = Stopwatch()
    wait_settled(timeout=60, worker=worker)
    assert states() == {S.SUCCEEDED: 10}
    assert_nothing_lost(
        sim,
        "5xx and 455, then healthy",
        faults_injected=faults.get("server_error", 0) + faults.get("maintenance", 0),
        recovered_s=healthy.seconds(),
    )


def test_a_create_task_answer_after_the_read_timeout_is_adopted_never_sent_twice(
    platform, roomy_project, fault_worker
):
    sim = platform.simulator
    # The provider creates the task, then answers after the client has stopped listening.
    sim.set_faults(slow={"rate": 1, "times": 3, "endpoints": ["createTask"]}, slow_seconds=3)
    worker = fault_worker(KIE_READ_TIMEOUT="1")
    queue(roomy_project, 6)
    wait_settled(timeout=60, worker=worker)
    assert sim.stats()["faults"]["slow"] == 3
    assert sim.stats()["tasks_created"] == 6
    final = states()
    assert set(final) <= {S.SUCCEEDED, S.NEEDS_ATTENTION}
    assert final.get(S.SUCCEEDED, 0) >= 3
    figures = assert_nothing_lost(sim, "createTask answered after the read timeout")
    assert figures.create_task_calls == 6


def test_every_callback_lost_polling_finishes_every_job(platform, roomy_project, fault_worker):
    sim = platform.simulator
    sim.set_faults(lost_callback=1)
    worker = fault_worker()
    watch = Stopwatch()
    queue(roomy_project, 8)
    wait_settled(timeout=60, worker=worker)
    stats = sim.stats()
    assert stats["callbacks_lost"] == 8 and stats["callbacks_delivered"] == 0
    assert states() == {S.SUCCEEDED: 8}
    assert_nothing_lost(
        sim,
        "all callbacks lost",
        record_info_calls=stats["requests"].get("recordInfo", 0),
        all_done_s=watch.seconds(),
    )


def test_duplicate_early_and_out_of_order_callbacks_charge_and_store_once(
    platform, roomy_project, fault_worker
):
    sim = platform.simulator
    # Early: the callback is sent before createTask answers; duplicate: it is sent twice.
    sim.set_faults(early_callback=1, duplicate_callback=1)
    worker = fault_worker()
    queue(roomy_project, 6)
    wait_settled(timeout=60, worker=worker)
    assert states() == {S.SUCCEEDED: 6}
    stats = sim.stats()
    assert stats["faults"]["early_callback"] == 6
    assert stats["callbacks_duplicated"] == 6

    # Out of order: a signed "generating" report and a signed failure for the same task arrive
    # after the success, then the success once more. Nothing may change.
    record_info_before = stats["requests"].get("recordInfo", 0)
    for job in GenerationJob.objects.all():
        events = job.events.count()
        base = {"taskId": job.provider_task_id, "model": "kling-2.6/text-to-video"}
        late = [
            (200, {**base, "state": "generating"}),
            (501, {**base, "state": "fail", "failCode": "500", "failMsg": "late failure"}),
            (200, {**base, "state": "success"}),
        ]
        for code, data in late:
            # 401: a signature seen already within the second is refused as a replay.
            assert signed_callback(platform, job, data, code=code).status_code in (200, 401)
        job.refresh_from_db()
        assert job.state == S.SUCCEEDED
        assert job.events.count() == events
    # A finished job's callbacks are answered without asking the provider.
    assert sim.stats()["requests"].get("recordInfo", 0) == record_info_before
    assert_nothing_lost(
        sim, "duplicate, early and out-of-order callbacks", callbacks=stats["callbacks_sent"]
    )


def test_an_expired_result_url_is_renewed_and_the_clip_stored(
    platform, roomy_project, fault_worker
):
    sim = platform.simulator
    sim.set_faults(expired_result=1)
    worker = fault_worker()
    queue(roomy_project, 4)
    wait_settled(timeout=60, worker=worker)
    stats = sim.stats()
    assert stats["faults"]["expired_result"] == 4
    assert stats["requests"].get("downloadUrl", 0) >= 4
    assert states() == {S.SUCCEEDED: 4}
    assert_nothing_lost(
        sim, "result URL expired", download_url_calls=stats["requests"]["downloadUrl"]
    )


def test_out_of_credits_mid_batch_pauses_then_every_job_finishes(
    platform, roomy_project, fault_worker, settings
):
    sim = platform.simulator
    # The platform's cached balance says plenty (as it would just before the account ran dry);
    # the provider has credits for three clips and answers the fourth with 402.
    account, _ = ProviderAccount.objects.get_or_create(provider="kie")
    ProviderAccount.objects.filter(pk=account.pk).update(
        credits_left=100_000, credits_checked_at=timezone.now()
    )
    sim.set_credits(3 * 55)
    settings.PIPELINE = {**settings.PIPELINE, "CREDITS_CACHE_SECONDS": 3600}
    worker = fault_worker(KIE_CREDITS_CACHE_SECONDS="3600", KIE_CREDITS_RECHECK_SECONDS="2")
    queue(roomy_project, 8)

    def paused() -> bool:
        return ProviderAccount.objects.filter(provider="kie", paused_at__isnull=False).exists()

    eventually(paused, timeout=30, interval=0.2, failure=lambda: f"never paused: {states()}")
    eventually(
        lambda: GenerationJob.objects.filter(state=S.SUCCEEDED).count() == 3,
        timeout=30,
        interval=0.2,
        failure=lambda: f"the three paid-for clips did not finish: {states()}",
    )
    time.sleep(2)  # paused: nothing more may be sent or fail meanwhile
    account = ProviderAccount.objects.get(provider="kie")
    assert account.pause_code == "402", account.pause_reason  # operators read why
    assert states() == {S.SUCCEEDED: 3, S.QUEUED: 5}
    assert sim.stats()["tasks_created"] == 3
    refused = sim.stats()["rejected"].get("createTask:402", 0)
    assert refused >= 1

    sim.set_credits(100_000)
    back = Stopwatch()
    # No sweep: the worker's clock reads the balance again and lets the held five go.
    wait_settled(timeout=60, worker=worker)
    assert states() == {S.SUCCEEDED: 8}
    assert_nothing_lost(
        sim,
        "402 mid-batch, then credits return",
        refused_402=refused,
        recovered_s=back.seconds(),
    )
