"""The whole flow through the API only, as a script would drive it over HTTP: a token, a
project, a job, waiting for `succeeded` (the simulator renders a real clip and calls back the
live server), downloading the clip, checking its sha256, and reading what it cost."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import requests

from tests.fixtures.waiting import eventually


def test_token_project_job_video_and_spend_over_http(platform, alice, team):
    api = requests.Session()
    base = f"{platform.url}/api/v1"

    token = api.post(f"{base}/auth/token/", json={"username": "alice", "password": "alice-pw-1"})
    assert token.status_code == 200, token.text
    api.headers["Authorization"] = f"Token {token.json()['token']}"

    project = api.post(f"{base}/projects/", json={"name": "Trailer", "monthly_budget_usd": "5.00"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]

    estimate = api.post(
        f"{base}/estimate/",
        json={
            "project": project_id,
            "kind": "text_to_video",
            "prompt": "A paper boat on a rainy street",
            "duration": 5,
            "sound": True,
            "aspect_ratio": "9:16",
        },
    ).json()
    created = api.post(
        f"{base}/jobs/",
        json={
            "project": project_id,
            "kind": "text_to_video",
            "prompt": "A paper boat on a rainy street",
            "duration": 5,
            "sound": True,
            "aspect_ratio": "9:16",
        },
        headers={"Idempotency-Key": "trailer-shot-1"},
    )
    assert created.status_code == 201, created.text
    job_url = f"{base}/jobs/{created.json()['id']}/"
    assert created.json()["estimated_cost_usd"] == estimate["estimated_cost_usd"] == "0.5500"

    def final() -> dict | None:
        job = api.get(job_url).json()
        return (
            job if job["state"] in ("succeeded", "failed", "canceled", "needs_attention") else None
        )

    job = eventually(final, timeout=30, interval=0.1, failure="the job never ended")
    assert job["state"] == "succeeded", job

    asset = job["asset"]
    assert asset["height"] > asset["width"] and asset["has_audio"] is True
    video = api.get(asset["url"])
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert len(video.content) == asset["size_bytes"]
    assert hashlib.sha256(video.content).hexdigest() == asset["sha256"]
    tail = api.get(asset["url"], headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == video.content[-100:]
    assert api.get(asset["poster_url"]).content[:3] == b"\xff\xd8\xff"

    # The simulator reports 110 credits for a 5 s clip with sound: $0.55 at the list rate.
    assert job["cost_usd"] == "0.5500"
    spend = api.get(f"{base}/spend/", params={"project": project_id}).json()
    assert (spend["charged_usd"], spend["reserved_usd"]) == ("0.5500", "0.0000")
    assert spend["by_kind"] == [{"kind": "text_to_video", "charged_usd": "0.5500", "jobs": 1}]
    money = api.get(f"{base}/projects/{project_id}/").json()
    assert Decimal(money["spent_this_month_usd"]) == Decimal("0.55")
    assert Decimal(money["remaining_this_month_usd"]) == Decimal("4.45")

    # A retry of the same request after all this still names the same job.
    again = api.post(
        f"{base}/jobs/",
        json={
            "project": project_id,
            "kind": "text_to_video",
            "prompt": "A paper boat on a rainy street",
            "duration": 5,
            "sound": True,
            "aspect_ratio": "9:16",
        },
        headers={"Idempotency-Key": "trailer-shot-1"},
    )
    assert (again.status_code, again.json()["id"]) == (200, job["id"])
