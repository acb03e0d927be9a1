"""Every list endpoint costs the same queries for a page of 2 rows as for a page of 25: no row
pays for a query of its own."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import EntryKind, LedgerEntry
from tests.fixtures.data import make_job, make_member
from videos.models import (
    ApiToken,
    Asset,
    Batch,
    Invitation,
    JobEvent,
    JobState,
    Membership,
    Project,
    Prompt,
    PromptVersion,
    Role,
    Team,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

ROWS = 25


def queries_for(api: Any, url: str, page_size: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url, {"page_size": page_size})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == page_size
    return len(queries)


@pytest.fixture
def many(alice, team, project) -> dict[str, Any]:
    """ROWS rows of everything alice can list, with what each row shows filled in."""
    later = timezone.now() + datetime.timedelta(days=7)
    for n in range(ROWS):
        ApiToken.objects.create(user=alice, name=f"t{n}", prefix=f"p{n}", key_sha256=f"{n:064d}")
        other = Team.objects.create(name=f"T{n}", slug=f"t{n}")
        Membership.objects.create(user=alice, team=other, role=Role.VIEWER)
        Invitation.objects.create(team=other, username="alice", invited_by=alice, expires_at=later)
        Invitation.objects.create(
            team=team, username=f"guest{n}", invited_by=alice, expires_at=later
        )
        make_member(f"member{n}", team)
        Project.objects.create(team=team, name=f"P{n}")
        prompt = Prompt.objects.create(project=project, title=f"Prompt {n}", created_by=alice)
        PromptVersion.objects.create(prompt=prompt, number=1, text=f"Text {n}", created_by=alice)
    prompt = Prompt.objects.create(project=project, title="Versioned", created_by=alice)
    for number in range(1, ROWS + 1):
        PromptVersion.objects.create(prompt=prompt, number=number, text="v", created_by=alice)
    previous = None
    for n in range(ROWS):
        job = make_job(project, state=JobState.SUCCEEDED, created_by=alice, retry_of=previous)
        JobEvent.objects.create(job=job, from_state="", to_state=JobState.QUEUED)
        Asset.objects.create(
            job=job,
            file=f"clips/{n}.mp4",
            poster=f"clips/{n}.jpg",
            sha256="0" * 64,
            size_bytes=1,
            duration_s=5,
            width=320,
            height=180,
            fps=24,
            has_audio=False,
        )
        LedgerEntry.objects.create(
            project=project, job=job, kind=EntryKind.CHARGE, amount=Decimal("0.28")
        )
        previous = job
    version = prompt.versions.get(number=1)
    for _ in range(ROWS):
        batch = Batch.objects.create(
            team=team, project=project, prompt_version=version, created_by=alice
        )
        make_job(project, batch=batch, batch_row=1, state=JobState.SUCCEEDED)
        make_job(project, batch=batch, batch_row=2, state=JobState.QUEUED)
    for n in range(ROWS):
        webhook = WebhookEndpoint.objects.create(
            project=project,
            url=f"https://hooks.example.com/{n}",
            events=[WebhookEvent.JOB_SUCCEEDED],
            secret="whsec_" + "A" * 43 + "=",
            created_by=alice,
        )
    for n in range(ROWS):
        WebhookDelivery.objects.create(
            endpoint=webhook, message_id=f"msg_{n}", event=WebhookEvent.JOB_SUCCEEDED, payload={}
        )
    return {"team": team, "prompt": prompt, "webhook": webhook}


LISTS = [
    "/api/v1/tokens/",
    "/api/v1/teams/",
    "/api/v1/teams/{team}/members/",
    "/api/v1/teams/{team}/invitations/",
    "/api/v1/invitations/",
    "/api/v1/projects/",
    "/api/v1/prompts/",
    "/api/v1/prompts/{prompt}/versions/",
    "/api/v1/jobs/",
    "/api/v1/batches/",
    "/api/v1/webhooks/",
    "/api/v1/webhooks/{webhook}/deliveries/",
]


@pytest.mark.parametrize("path", LISTS)
def test_a_list_costs_the_same_queries_whatever_its_page_size(alice_api, many, path):
    url = path.format(team=many["team"].pk, prompt=many["prompt"].pk, webhook=many["webhook"].pk)
    queries_for(alice_api, url, 1)  # the first request of a client does its own set-up
    assert queries_for(alice_api, url, 2) == queries_for(alice_api, url, ROWS)
