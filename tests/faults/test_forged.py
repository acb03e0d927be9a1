"""Forged callbacks against a live server with a real worker running: every kind is refused
with a 4xx, changes nothing, and makes no provider call (a forger cannot make the platform
spend its rate limit or its workers)."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.faults.invariants import assert_nothing_lost
from tests.faults.running import queue, states, wait_settled
from tests.fixtures.simulator import SIMULATOR_HMAC_KEY
from videos.models import GenerationJob, JobState
from videos.providers.kie import sign_callback

S = JobState
pytestmark = [pytest.mark.faults, pytest.mark.e2e]


def forgeries(platform, job: GenerationJob) -> list[tuple[str, str, bytes, dict[str, str], int]]:
    """(what, URL, body, headers, expected status) for one job."""
    good_path = f"{platform.url}{job.callback_path}"
    task_id = job.provider_task_id or ""
    data = {"taskId": task_id, "state": "fail", "failCode": "500", "failMsg": "x"}
    body = json.dumps({"code": 501, "msg": "forged", "data": data}).encode()
    now = str(int(time.time()))
    signed = {
        "X-Webhook-Timestamp": now,
        "X-Webhook-Signature": sign_callback(SIMULATOR_HMAC_KEY, task_id, now),
    }
    stale = str(int(time.time()) - 3600)
    return [
        (
            "wrong token",
            good_path.rstrip("/").rsplit("/", 1)[0] + "/not-the-token/",
            body,
            signed,
            404,
        ),
        (
            "unknown job",
            f"{platform.url}/callbacks/kie/00000000-0000-4000-8000-000000000000/x/",
            body,
            signed,
            404,
        ),
        (
            "wrong signature",
            good_path,
            body,
            {
                **signed,
                "X-Webhook-Signature": sign_callback("not-the-key", task_id, now),
            },
            401,
        ),
        (
            "stale signature",
            good_path,
            body,
            {
                "X-Webhook-Timestamp": stale,
                "X-Webhook-Signature": sign_callback(SIMULATOR_HMAC_KEY, task_id, stale),
            },
            401,
        ),
        ("unsigned", good_path, body, {}, 401),
        ("oversized", good_path, b"{" + b" " * (300 * 1024) + b"}", signed, 413),
        ("malformed", good_path, b'{"code": 200, "data": ', signed, 400),
        ("deeply nested", good_path, b"[" * 50_000 + b"]" * 50_000, signed, 400),
    ]


def test_forged_callbacks_are_refused_and_change_nothing(platform, roomy_project, fault_worker):
    sim = platform.simulator
    sim.set_faults(lost_callback=1)  # the real outcome comes by polling, after the forgeries
    fault_worker(JOB_CALLBACK_GRACE_SECONDS="4")
    queue(roomy_project, 3)
    # Forge while the jobs are in flight at the provider.
    sim.wait_for_stats(lambda s: s["create_task_calls"] == 3, timeout=30)
    jobs = list(GenerationJob.objects.exclude(provider_task_id=None))
    while len(jobs) < 3:
        time.sleep(0.1)
        jobs = list(GenerationJob.objects.exclude(provider_task_id=None))
    record_info_before = sim.stats()["requests"].get("recordInfo", 0)
    for job in jobs:
        events = job.events.count()
        for what, url, body, headers, expected in forgeries(platform, job):
            answer = requests.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", **headers},
                timeout=10,
            )
            assert answer.status_code == expected, (what, answer.status_code, answer.text)
        job.refresh_from_db()
        assert job.state != S.FAILED and job.events.count() == events, what
    # No forgery made the platform ask the provider anything.
    assert sim.stats()["requests"].get("recordInfo", 0) == record_info_before
    wait_settled(timeout=60)
    assert states() == {S.SUCCEEDED: 3}
    assert_nothing_lost(sim, "forged callbacks", forgeries=len(jobs) * 8)
