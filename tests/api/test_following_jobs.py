"""Following a job with fewer requests: `?wait=`, state lists, and rates a script can read."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from rest_framework.authtoken.models import Token

from tests.api.conftest import errors
from tests.fixtures.data import make_job
from videos.models import JobState

pytestmark = pytest.mark.django_db(transaction=True)


def test_wait_answers_as_soon_as_the_job_is_settled(platform, project, alice):
    token = Token.objects.create(user=alice)
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token.key}"
    platform.simulator.set_faults(slow={"rate": 1, "endpoints": ["recordInfo"]})
    body = {
        "project": project.pk,
        "kind": "text_to_video",
        "prompt": "Waves at night",
        "duration": 5,
        "sound": False,
    }
    created = api.post(f"{platform.url}/api/v1/jobs/", json=body, timeout=30).json()
    started = time.monotonic()
    job = api.get(f"{platform.url}/api/v1/jobs/{created['id']}/?wait=30", timeout=40).json()
    assert job["state"] == "succeeded", job
    assert time.monotonic() - started < 25


def test_wait_gives_up_after_its_seconds(alice_api, project):
    job = make_job(project, state=JobState.SUBMITTED)
    started = time.monotonic()
    answer = alice_api.get(f"/api/v1/jobs/{job.pk}/?wait=1")
    assert answer.status_code == 200 and answer.json()["state"] == "submitted"
    assert 0.9 < time.monotonic() - started < 10  # far less than waiting on would take


def test_a_busy_server_answers_at_once(alice_api, project, monkeypatch):
    from videos.api import jobs as jobs_api

    monkeypatch.setattr(jobs_api, "_waiters", threading.BoundedSemaphore(1))
    jobs_api._waiters.acquire()  # another waiter holds the only place
    job = make_job(project, state=JobState.SUBMITTED)
    started = time.monotonic()
    assert alice_api.get(f"/api/v1/jobs/{job.pk}/?wait=30").json()["state"] == "submitted"
    assert time.monotonic() - started < 10  # not the 30 s asked for


@pytest.mark.parametrize("wait", ["61", "-1", "soon", "1.5"])
def test_a_wait_outside_0_to_60_seconds_is_refused(alice_api, project, wait):
    job = make_job(project)
    answer = alice_api.get(f"/api/v1/jobs/{job.pk}/?wait={wait}")
    assert answer.status_code == 400 and "wait" in errors(answer)


def test_the_list_takes_states_separated_by_commas_or_repeated(alice_api, project):
    queued, submitting, _settled = (
        make_job(project, state=s) for s in ("queued", "submitting", "succeeded")
    )
    for query in ("state=queued,submitting", "state=queued&state=submitting"):
        ids = {row["id"] for row in alice_api.get(f"/api/v1/jobs/?{query}").json()["results"]}
        assert ids == {str(queued.pk), str(submitting.pk)}


def test_every_answer_says_how_much_of_its_rate_is_left(alice_api, project, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "user": "5/min",
            "team": None,
            "token": None,
            "job_read": "100/min",
        },
    }
    first = alice_api.get("/api/v1/projects/")
    second = alice_api.get("/api/v1/projects/")
    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("5", "4")
    assert second["RateLimit-Remaining"] == "3"
    assert 0 < int(second["RateLimit-Reset"]) <= 60


def test_polling_a_job_does_not_use_up_the_users_other_requests(alice_api, project, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "user": "3/min",
            "team": None,
            "token": None,
            "job_read": "50/min",
        },
    }
    job = make_job(project)
    for _ in range(10):
        assert alice_api.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert alice_api.get("/api/v1/projects/").status_code == 200
    assert alice_api.get(f"/api/v1/jobs/{job.pk}/")["RateLimit-Limit"] == "50"


def test_a_time_filter_with_any_iso_offset_is_compared_in_utc(alice_api, project):
    from tests.fixtures.data import make_job

    make_job(project)
    # ISO 8601 allows offsets up to +23:59; PostgreSQL refuses those past 15:59 unless in UTC.
    response = alice_api.get("/api/v1/jobs/", {"created_before": "5065-01-29T08:08:25.6+22:59"})
    assert response.status_code == 200 and len(response.json()["results"]) == 1
    later = alice_api.get("/api/v1/jobs/", {"created_after": "2000-01-01T00:00:00-23:30"})
    assert len(later.json()["results"]) == 1
