"""Input built to break things: every one answers 4xx, never a 500 or a wrong answer."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.api.conftest import errors, make_succeeded_job
from tests.fixtures.data import make_job
from videos.image_urls import image_url_problem
from videos.models import GenerationJob, JobState

pytestmark = pytest.mark.django_db
JOBS = "/api/v1/jobs/"


@pytest.mark.parametrize("value", ["²", "١٢", "12\u00b3"])
def test_digits_that_are_not_ascii_are_not_ids(alice_api, job_body, value):
    response = alice_api.post(JOBS, {**job_body, "project": value})
    assert response.status_code == 400
    assert "project" in errors(response)
    assert (
        alice_api.post(
            "/api/v1/prompts/", {"project": value, "title": "t", "text": "t"}
        ).status_code
        == 400
    )


def test_json_nested_too_deeply_is_a_parse_error():
    body = "[" * 200_000 + "]" * 200_000
    response = APIClient().post("/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


@pytest.mark.parametrize(
    "header", [f"bytes={'9' * 5000}-", f"bytes=0-{'9' * 5000}", f"bytes=-{'9' * 5000}"]
)
def test_absurd_ranges_mean_the_whole_file(alice_api, project, header):
    job = make_succeeded_job(project)
    response = alice_api.get(f"{JOBS}{job.pk}/video/", HTTP_RANGE=header)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == job.asset.file.open("rb").read()


@pytest.mark.parametrize(
    "url",
    [
        "http://[::169.254.169.254]/latest/",  # IPv4-compatible
        "http://[64:ff9b::a9fe:a9fe]/latest/",  # NAT64 of 169.254.169.254
        "http://[2002:a9fe:a9fe::]/latest/",  # 6to4 of 169.254.169.254
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
    ],
)
def test_ipv6_spellings_of_private_addresses_are_refused(url):
    assert "public address" in (image_url_problem(url) or "")


def test_a_job_is_retried_once(alice_api, project):
    failed = make_job(project, state=JobState.FAILED)
    assert alice_api.post(f"{JOBS}{failed.pk}/retry/").status_code == 201
    again = alice_api.post(f"{JOBS}{failed.pk}/retry/")
    assert again.status_code == 409
    assert "retried already" in again.json()["detail"]
    assert GenerationJob.objects.filter(retry_of=failed).count() == 1


def test_batch_keys_differing_only_in_case_are_different_keys(alice_api, job_body):
    first = alice_api.post(f"{JOBS}batch/", {"jobs": [job_body]}, HTTP_IDEMPOTENCY_KEY="abc")
    other = {**job_body, "duration": 10}
    second = alice_api.post(f"{JOBS}batch/", {"jobs": [other]}, HTTP_IDEMPOTENCY_KEY="ABC")
    assert (first.status_code, second.status_code) == (201, 201)


def test_the_login_rate_cannot_be_dodged_with_forwarded_for(settings, alice):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "token": "2/min",
        },
    }
    client = APIClient()
    codes = [
        client.post(
            "/api/v1/auth/token/",
            {"username": "alice", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        ).status_code
        for n in range(4)
    ]
    assert codes[:2] == [400, 400]
    assert codes[2:] == [429, 429]


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/jobs/"])
def test_a_post_without_the_trailing_slash_creates_the_job_too(alice_api, job_body, path):
    response = alice_api.post(path, job_body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "queued"


def test_every_route_answers_without_its_trailing_slash(alice_api, alice):
    token = alice_api.post(
        "/api/v1/auth/token", {"username": "alice", "password": "alice-pw-1"}, format="json"
    )
    assert token.status_code == 200 and "token" in token.json()
    assert alice_api.get("/api/v1/projects").status_code == 200


def test_an_unknown_api_route_is_a_json_404(alice_api):
    response = alice_api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_a_server_error_under_the_api_is_json(alice_api, monkeypatch):
    from videos.api import projects

    def broken(*args, **kwargs):
        raise RuntimeError("the database caught fire")

    monkeypatch.setattr(projects.selectors, "project_list", broken)
    alice_api.raise_request_exception = False
    response = alice_api.get("/api/v1/projects/")
    assert response.status_code == 500
    assert response.json() == {
        "code": "server_error",
        "detail": "The server failed to answer; try again later.",
    }
