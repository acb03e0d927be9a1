"""Two teams for the abuse scenarios: Alpha, whose owner olive (staff, not a superuser) does the
abusing, and Beta, owned by bob, with one of everything a URL can name. Beta's rows carry
marker text that no answer to olive may contain."""

from __future__ import annotations

import uuid
from decimal import Decimal
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task
from rest_framework.authtoken.models import Token

from billing.models import Budget, LedgerEntry, Price
from tests.api.conftest import PNG_BYTES, make_succeeded_job
from tests.fixtures.data import make_job
from videos import services
from videos.models import (
    ApiToken,
    Asset,
    Batch,
    GenerationJob,
    JobEvent,
    JobState,
    Kind,
    Membership,
    Project,
    Prompt,
    PromptVersion,
    ProviderAccount,
    Role,
    Team,
    WebhookDelivery,
    WebhookEndpoint,
)

BETA_PROJECT = "Beta-secret-project"
BETA_PROMPT = "beta-secret-prompt-text: a lighthouse keeper's diary"
BETA_JOB_PROMPT = "beta-secret-job-prompt: a submarine at midnight"
# Text only Beta's rows hold: an answer to olive that shows any of it shows Beta's data.
BETA_MARKERS = [BETA_PROJECT, BETA_PROMPT, BETA_JOB_PROMPT, "beta-secret-title", "bob_beta"]


def team_rows(team: Team, owner, tag: str, *, project_name: str, prompt: str, job_prompt: str):
    """A project with a budget, a prompt, a finished clip (with its source image), a failed and
    a queued job, a batch, an invitation, a webhook with a delivery and the owner's tokens."""
    project = Project.objects.create(team=team, name=project_name)
    budget = Budget.objects.create(project=project, monthly_cap_usd=Decimal("50.00"))
    saved = services.prompt_create(
        project=project, title=f"{tag}-secret-title", text=prompt, by=owner
    )
    version = saved.versions.get()
    batch = Batch.objects.create(
        team=team, project=project, prompt_version=version, rows=[{}], created_by=owner
    )
    clip = make_succeeded_job(
        project,
        kind=Kind.IMAGE_TO_VIDEO,
        source_image_url=f"https://{tag}.example.com/still.png",
        prompt_text=job_prompt,
        batch=batch,
        batch_row=1,
    )
    clip.source_image.save(f"{tag}.png", ContentFile(PNG_BYTES))
    JobEvent.objects.create(job=clip, from_state="", to_state=JobState.QUEUED, reason="Created")
    failed = make_job(project, prompt_text=job_prompt, state=JobState.FAILED)
    queued = make_job(project, prompt_text=job_prompt, state=JobState.QUEUED)
    invitation = services.invitation_create(
        team=team, role=Role.VIEWER, by=owner, email=f"{tag}-invitee@example.com"
    )
    webhook = WebhookEndpoint.objects.create(
        project=project,
        url=f"https://{tag}.example.com/hooks",
        events=["job.succeeded"],
        secret="whsec_" + uuid.uuid4().hex,
        created_by=owner,
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=webhook, message_id=f"msg_{uuid.uuid4().hex}", event="job.succeeded", payload={}
    )
    api_token, _ = services.api_token_create(user=owner, name=f"{tag} script")
    return SimpleNamespace(
        team=team,
        owner=owner,
        project=project,
        budget=budget,
        prompt=saved,
        version=version,
        batch=batch,
        clip=clip,
        event=clip.events.get(),
        asset=clip.asset,
        entry=LedgerEntry.objects.get(job=clip),
        failed=failed,
        queued=queued,
        invitation=invitation,
        membership=Membership.objects.get(team=team, user=owner),
        webhook=webhook,
        delivery=delivery,
        api_token=api_token,
        drf_token=Token.objects.create(user=owner),
    )


def two_teams(team: Team, other_team: Team) -> SimpleNamespace:
    """Alpha (olive owns, staff) and Beta (bob owns), and rows that belong to no team."""
    users = get_user_model().objects
    olive = users.create_user(username="olive", password="olive-pw-1", is_staff=True)
    Membership.objects.create(user=olive, team=team, role=Role.OWNER)
    bob = users.create_user(username="bob_beta", password="bob-pw-1", email="bob@beta.example")
    Membership.objects.create(user=bob, team=other_team, role=Role.OWNER)
    now = timezone.now()
    unowned = SimpleNamespace(
        price=Price.objects.first(),
        account=ProviderAccount.objects.get_or_create(provider="kie")[0],
        group=Group.objects.create(name="beta-group"),
        schedule=Schedule.objects.create(func="videos.tasks.nothing", name="beta-schedule"),
        success=Task.objects.create(
            id=uuid.uuid4().hex, name="beta-ok", func="f", started=now, stopped=now, success=True
        ),
        failure=Task.objects.create(
            id=uuid.uuid4().hex, name="beta-ko", func="f", started=now, stopped=now, success=False
        ),
        ormq=OrmQ.objects.create(key="default", payload="x", lock=now),
    )
    return SimpleNamespace(
        olive=olive,
        bob=bob,
        alpha=team_rows(
            team,
            olive,
            "alpha",
            project_name="Alpha launch",
            prompt="A fox runs through snow",
            job_prompt="An owl at dusk",
        ),
        beta=team_rows(
            other_team,
            bob,
            "beta",
            project_name=BETA_PROJECT,
            prompt=BETA_PROMPT,
            job_prompt=BETA_JOB_PROMPT,
        ),
        unowned=unowned,
    )


def team_snapshot(team: Team) -> dict[str, list[dict[str, object]]]:
    """Every row of `team` and its projects, as values, to compare before and after."""
    projects = Project.objects.filter(team=team)
    querysets = {
        "team": Team.objects.filter(pk=team.pk),
        "memberships": Membership.objects.filter(team=team),
        "invitations": team.invitations.all(),
        "projects": projects,
        "budgets": Budget.objects.filter(project__in=projects),
        "prompts": Prompt.objects.filter(project__in=projects),
        "versions": PromptVersion.objects.filter(prompt__project__in=projects),
        "batches": Batch.objects.filter(team=team),
        "jobs": GenerationJob.objects.filter(team=team),
        "assets": Asset.objects.filter(job__team=team),
        "ledger": LedgerEntry.objects.filter(project__in=projects),
        "webhooks": WebhookEndpoint.objects.filter(project__in=projects),
        "deliveries": WebhookDelivery.objects.filter(endpoint__project__in=projects),
        "api_tokens": ApiToken.objects.filter(user__memberships__team=team),
        "drf_tokens": Token.objects.filter(user__memberships__team=team),
    }
    return {name: list(qs.order_by("pk").values()) for name, qs in querysets.items()}
