"""/healthz/ says only ok or degraded; the details are for operators (a superuser's session or
the metrics token) at /ops/status/ and, for Prometheus, /metrics."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.fixtures.data import make_job, make_member
from videos.models import GenerationJob, JobState, ProviderAccount, Role

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def paused(db) -> ProviderAccount:
    return ProviderAccount.objects.create(
        provider="kie", paused_at=timezone.now(), pause_code="402", pause_reason="No credits left"
    )


def test_health_says_only_ok_or_degraded(client, paused):
    assert client.get("/healthz/").json() == {"status": "degraded"}
    paused.paused_at = None
    paused.save()
    assert client.get("/healthz/").json() == {"status": "ok"}


def test_operations_status_is_for_superusers_and_the_token(project, paused, settings):
    settings.METRICS_TOKEN = TOKEN
    old = make_job(project)
    GenerationJob.objects.filter(pk=old.pk).update(
        created=timezone.now() - datetime.timedelta(minutes=5)
    )
    make_job(project, state=JobState.FAILED)
    root = Client()
    root.force_login(get_user_model().objects.create_superuser("root", password="root-pw-1"))
    editor = Client()
    editor.force_login(make_member("erin", project.team, Role.OWNER))

    status = root.get("/ops/status/").json()
    by_token = Client().get("/ops/status/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert status["status"] == "degraded"
    assert status["submissions_paused"]["kie"]["reason"] == "No credits left"
    assert status["jobs_by_state"]["queued"] == 1 and status["jobs_by_state"]["failed"] == 1
    assert status["jobs_queued"] == 1
    assert status["oldest_queued_job_age_seconds"] >= 300
    assert isinstance(status["task_queue_depth"], int)
    assert by_token.status_code == 200
    assert editor.get("/ops/status/").status_code == 404
    assert Client().get("/ops/status/").status_code == 404
    assert Client().get("/ops/status/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404


def test_metrics_need_the_token(project, paused, settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    make_job(project)

    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'reelforge_jobs{state="queued"} 1.0' in text
    assert 'reelforge_submissions_paused{code="402",provider="kie"} 1.0' in text
    assert "reelforge_task_queue_depth" in text
    assert "reelforge_oldest_queued_job_age_seconds" in text
