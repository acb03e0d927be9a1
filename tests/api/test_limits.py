"""What protects the API: body size limits, request rates per user and per team, and the
schema and its documentation page, served without any outside host."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import client_for
from tests.fixtures.data import make_member
from videos.models import Role

pytestmark = pytest.mark.django_db


def test_a_json_body_over_the_limit_is_refused_before_reading(alice_api, settings, project):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = alice_api.post("/api/v1/projects/", {"name": "Big", "description": "x" * 4096})
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    # The view's own check, made before any parser reads the body:
    assert "larger than 2048 bytes" in response.json()["detail"]
    assert not project.team.projects.filter(name="Big").exists()


def test_an_upload_over_the_limit_is_refused(alice_api, project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    huge = SimpleUploadedFile("huge.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (12 * 1024 * 1024))
    response = alice_api.post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "image_to_video", "prompt": "Rain", "image": huge},
        format="multipart",
    )
    assert response.status_code == 413


def test_a_user_over_their_rate_gets_429_with_retry_after(alice_api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/min", "team": None, "token": None},
    }
    statuses = [alice_api.get("/api/v1/projects/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = alice_api.get("/api/v1/projects/")
    assert 0 < int(response["Retry-After"]) <= 60
    assert response.json()["code"] == "throttled"


def test_a_team_shares_one_rate(alice_api, erin_api, bob_api, project, other_project, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": None, "team": "4/min", "token": None},
    }
    url = f"/api/v1/projects/{project.pk}/"
    for _ in range(2):
        assert alice_api.get(url).status_code == 200
        assert erin_api.get(url).status_code == 200

    assert erin_api.get(url).status_code == 429
    assert "Retry-After" in alice_api.get(url)
    # Another team has its own rate, and a request acting on no single team counts for none.
    assert bob_api.get(f"/api/v1/projects/{other_project.pk}/").status_code == 200
    assert erin_api.get("/api/v1/projects/").status_code == 200


def test_a_request_counts_only_for_the_team_it_acts_on(
    team, other_team, project, other_project, bob_api, settings
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": None, "team": "3/min", "token": None},
    }
    both = make_member("carol", team, Role.VIEWER)
    from videos.models import Membership

    Membership.objects.create(user=both, team=other_team, role=Role.VIEWER)
    carol = client_for(both)
    ours = f"/api/v1/projects/{project.pk}/"
    assert [carol.get(ours).status_code for _ in range(3)] == [200, 200, 200]
    assert carol.get(ours).status_code == 429
    assert carol.get(f"/api/v1/jobs/?project={project.pk}").status_code == 429
    # Carol's traffic in team Alpha throttles neither team Beta nor her own work there.
    theirs = f"/api/v1/projects/{other_project.pk}/"
    assert bob_api.get(theirs).status_code == 200
    assert carol.get(theirs).status_code == 200


def test_logging_in_is_rate_limited_per_address(alice, client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": None, "team": None, "token": "2/min"},
    }
    body = {"username": "alice", "password": "guess"}
    statuses = [
        client.post("/api/v1/auth/token/", body, content_type="application/json").status_code
        for _ in range(3)
    ]
    assert statuses == [400, 400, 429]


def test_the_schema_documents_every_operation(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) == {
        "/api/v1/auth/token/",
        "/api/v1/tokens/",
        "/api/v1/tokens/{token_id}/",
        "/api/v1/teams/",
        "/api/v1/teams/{team_id}/members/",
        "/api/v1/teams/{team_id}/members/{user_id}/",
        "/api/v1/projects/",
        "/api/v1/projects/{project_id}/",
        "/api/v1/prompts/",
        "/api/v1/prompts/{prompt_id}/",
        "/api/v1/prompts/{prompt_id}/versions/",
        "/api/v1/jobs/",
        "/api/v1/jobs/batch/",
        "/api/v1/jobs/{job_id}/",
        "/api/v1/jobs/{job_id}/cancel/",
        "/api/v1/jobs/{job_id}/retry/",
        "/api/v1/jobs/{job_id}/video/",
        "/api/v1/jobs/{job_id}/poster/",
        "/api/v1/jobs/{job_id}/video-url/",
        "/api/v1/estimate/",
        "/api/v1/spend/",
        "/api/v1/teams/{team_id}/leave/",
        "/api/v1/teams/{team_id}/invitations/",
        "/api/v1/teams/{team_id}/invitations/{invitation_id}/",
        "/api/v1/invitations/",
        "/api/v1/invitations/{invitation_id}/accept/",
        "/api/v1/invitations/{invitation_id}/decline/",
        "/api/v1/batches/",
        "/api/v1/batches/preview/",
        "/api/v1/batches/{batch_id}/",
        "/api/v1/batches/{batch_id}/cancel-remaining/",
        "/api/v1/batches/{batch_id}/retry-failed/",
        "/api/v1/batches/{batch_id}/results/",
        "/api/v1/batches/{batch_id}/clips/",
        "/api/v1/webhooks/",
        "/api/v1/webhooks/{webhook_id}/",
        "/api/v1/webhooks/{webhook_id}/rotate-secret/",
        "/api/v1/webhooks/{webhook_id}/test/",
        "/api/v1/webhooks/{webhook_id}/deliveries/",
        "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/resend/",
    }
    create = paths["/api/v1/jobs/"]["post"]
    assert {"201", "200", "400", "402", "403", "409", "413", "429"} <= set(create["responses"])
    assert set(create["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "callback_token" not in response.content.decode()


def test_the_docs_page_loads_everything_from_this_site(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)
