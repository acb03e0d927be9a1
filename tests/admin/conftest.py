"""Two teams for the admin's scoping tests: Alpha, where olive owns, erin edits and vic views
(all staff), and Beta, whose every row carries a marker that must never reach Alpha's people."""

from __future__ import annotations

import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from billing.models import Budget, EntryKind, LedgerEntry
from tests.fixtures.data import make_job
from videos import services
from videos.models import Asset, JobEvent, JobState, Membership, Project, Role, Team

# Text that only Beta's rows hold: a page that shows any of it shows Beta's data.
BETA_MARKERS = [
    "Beta-secret-project",
    "Beta-secret-prompt",
    "beta-secret-text",
    "beta-secret-job",
    "beta-task-777",
    "beta_code",
    "beta-secret-ledger",
    "77.77",
    "beta-invitee@example.com",
    "bob_beta_secret",
    "beta-secret-event",
    "beta-sha-secret",
]


def staff(username: str, team: Team, role: str):
    user = get_user_model().objects.create_user(
        username=username, password=f"{username}-pw-1", is_staff=True
    )
    Membership.objects.create(user=user, team=team, role=role)
    return user


def team_rows(team: Team, tag: str, *, owner, **markers: str) -> SimpleNamespace:
    """A project with a budget, a prompt, a job with an event, a clip and ledger entries, and
    an invitation, all in `team`."""
    project = Project.objects.create(team=team, name=markers.get("project", f"{tag} project"))
    budget = Budget.objects.create(
        project=project, monthly_cap_usd=Decimal(markers.get("cap", "50.00"))
    )
    prompt = services.prompt_create(
        project=project,
        title=markers.get("prompt", f"{tag} prompt"),
        text=markers.get("text", f"A {tag} fox runs through snow"),
        by=owner,
    )
    job = make_job(
        project,
        prompt_text=markers.get("job", f"A {tag} owl at dusk"),
        provider_task_id=markers.get("task", f"{tag}-task-1"),
        provider_error_code=markers.get("code", ""),
        state=JobState.FAILED,
        estimated_cost_usd=Decimal("0.55"),
    )
    event = JobEvent.objects.create(
        job=job, from_state="", to_state=JobState.QUEUED, reason=markers.get("event", "Created")
    )
    asset = Asset.objects.create(
        job=job,
        file=ContentFile(b"not really a clip", name="clip.mp4"),
        poster=ContentFile(b"\xff\xd8\xff", name="poster.jpg"),
        sha256=markers.get("sha", uuid.uuid4().hex),
        size_bytes=17,
        duration_s=5.0,
        width=320,
        height=180,
        fps=12.0,
        has_audio=False,
    )
    entry = LedgerEntry.objects.create(
        project=project,
        job=job,
        kind=EntryKind.CHARGE,
        amount=Decimal("0.55"),
        note=markers.get("note", f"{tag} charge"),
    )
    invitation = services.invitation_create(
        team=team, role=Role.VIEWER, by=owner, email=markers.get("email", f"{tag}@example.com")
    )
    return SimpleNamespace(
        team=team,
        project=project,
        budget=budget,
        prompt=prompt,
        version=prompt.versions.get(),
        job=job,
        event=event,
        asset=asset,
        entry=entry,
        invitation=invitation,
        membership=Membership.objects.get(team=team, user=owner),
    )


@pytest.fixture
def world(team: Team, other_team: Team) -> SimpleNamespace:
    olive = staff("olive", team, Role.OWNER)
    erin = staff("erin", team, Role.EDITOR)
    vic = staff("vic", team, Role.VIEWER)
    bob = get_user_model().objects.create_user(username="bob_beta_secret", password="bob-pw-1")
    Membership.objects.create(user=bob, team=other_team, role=Role.OWNER)
    alpha = team_rows(team, "alpha", owner=olive)
    beta = team_rows(
        other_team,
        "beta",
        owner=bob,
        project="Beta-secret-project",
        cap="77.77",
        prompt="Beta-secret-prompt",
        text="beta-secret-text",
        job="beta-secret-job",
        task="beta-task-777",
        code="beta_code",
        event="beta-secret-event",
        sha="beta-sha-secret",
        note="beta-secret-ledger",
        email="beta-invitee@example.com",
    )
    return SimpleNamespace(olive=olive, erin=erin, vic=vic, bob=bob, alpha=alpha, beta=beta)
