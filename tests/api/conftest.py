"""API clients for named users: in team Alpha alice owns, erin edits and vic views; bob owns
team Beta. Each client sends its user's token, as a script would."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.models import EntryKind, LedgerEntry
from tests.fixtures.data import make_job, make_member
from videos.models import Asset, GenerationJob, JobState, Project, Role, Team

# The smallest valid PNG: the pipeline sniffs the signature, not the name.
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(autouse=True)
def fresh_throttles(settings: Any) -> None:
    # Request counts live in the cache, which outlives a test's database rollback. A prefix of
    # its own gives each test fresh counts without flushing a cache others may share.
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"api-test-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


def client_for(user: User) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def as_user() -> Callable[[User], APIClient]:
    return client_for


@pytest.fixture
def erin(team: Team):
    return make_member("erin", team, Role.EDITOR)


@pytest.fixture
def vic(team: Team):
    return make_member("vic", team, Role.VIEWER)


@pytest.fixture
def alice_api(alice: User) -> APIClient:
    return client_for(alice)


@pytest.fixture
def erin_api(erin: User) -> APIClient:
    return client_for(erin)


@pytest.fixture
def vic_api(vic: User) -> APIClient:
    return client_for(vic)


@pytest.fixture
def bob_api(bob: User) -> APIClient:
    return client_for(bob)


@pytest.fixture
def job_body(project: Project) -> dict[str, object]:
    return {
        "project": project.pk,
        "kind": "text_to_video",
        "prompt": "A red fox runs through snow at dawn",
        "duration": 5,
        "aspect_ratio": "16:9",
        "sound": False,
    }


CLIP_BYTES = bytes(range(256)) * 40  # stands in for an MP4: the API serves bytes, not probes


def make_succeeded_job(
    project: Project, *, charge: str = "0.28", **fields: object
) -> GenerationJob:
    """A job as the pipeline leaves it when done: stored clip and poster, charge in the ledger."""
    job = make_job(project, state=JobState.SUCCEEDED, estimated_cost_usd=Decimal("0.28"), **fields)
    asset = Asset(
        job=job,
        sha256=hashlib.sha256(CLIP_BYTES).hexdigest(),
        size_bytes=len(CLIP_BYTES),
        duration_s=5.0,
        width=1280,
        height=720,
        fps=24.0,
        has_audio=False,
    )
    asset.file.save(f"{job.pk}.mp4", ContentFile(CLIP_BYTES), save=False)
    asset.poster.save(f"{job.pk}.jpg", ContentFile(b"\xff\xd8\xff poster"), save=False)
    asset.save()
    LedgerEntry.objects.create(
        project=project, job=job, kind=EntryKind.CHARGE, amount=Decimal(charge)
    )
    return job


def errors(response: object) -> dict[str, list[str]]:
    """A 400's field errors as `{path: [message, ...]}`, checking the error shape on the way."""
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == "invalid" and body["detail"], body
    return {
        path: [error["message"] for error in found]
        for path, found in body["fields"].items()
        if all(set(error) == {"code", "message"} for error in found)
    }
