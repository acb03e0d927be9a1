"""Two teams for the portal's tests: Alpha (owner olga, editor erin, viewer vic) with a project
holding a finished clip, a failed job and a saved prompt; Beta (bob) with the same, which no
member of Alpha may see."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from billing.models import EntryKind, LedgerEntry
from tests.fixtures.data import make_job, make_member
from videos import services
from videos.models import Asset, JobEvent, JobState, Project, Role, Team


def team_rows(team: Team, tag: str, owner: Any) -> SimpleNamespace:
    project = Project.objects.get(team=team) if team.projects.exists() else None
    project = project or services.project_create(
        team=team, name=f"{tag} project", monthly_budget_usd=Decimal("10.00")
    )
    prompt = services.prompt_create(
        project=project, title=f"{tag} prompt", text=f"A {tag} fox runs through snow", by=owner
    )
    services.prompt_update(prompt=prompt, by=owner, text=f"A {tag} fox runs through deep snow")
    clip = make_job(project, prompt_text=f"A {tag} owl at dusk", state=JobState.SUCCEEDED)
    JobEvent.objects.create(job=clip, from_state="", to_state=JobState.QUEUED, reason="Created")
    JobEvent.objects.create(
        job=clip, from_state=JobState.RETRIEVING, to_state=JobState.SUCCEEDED, reason="Stored."
    )
    Asset.objects.create(
        job=clip,
        file=ContentFile(b"\x00" * 1000, name="clip.mp4"),
        poster=ContentFile(b"\xff\xd8\xff", name="poster.jpg"),
        sha256=uuid.uuid4().hex,
        size_bytes=1000,
        duration_s=5.0,
        width=1280,
        height=720,
        fps=24.0,
        has_audio=True,
    )
    LedgerEntry.objects.create(
        project=project, job=clip, kind=EntryKind.CHARGE, amount=Decimal("0.55"), note="charge"
    )
    failed = make_job(
        project,
        prompt_text=f"A {tag} whale sings",
        state=JobState.FAILED,
        state_reason="The provider refused the prompt: it names a real person.",
    )
    return SimpleNamespace(team=team, project=project, prompt=prompt, clip=clip, failed=failed)


@pytest.fixture
def world(team: Team, other_team: Team) -> SimpleNamespace:
    olga = make_member("olga", team, Role.OWNER)
    erin = make_member("erin", team, Role.EDITOR)
    vic = make_member("vic", team, Role.VIEWER)
    bob = make_member("bob", other_team, Role.OWNER)
    return SimpleNamespace(
        olga=olga,
        erin=erin,
        vic=vic,
        bob=bob,
        alpha=team_rows(team, "alpha", olga),
        beta=team_rows(other_team, "beta", bob),
    )


@pytest.fixture
def signed_in() -> Callable[[Any], Client]:
    def sign_in(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return sign_in
