"""Who may do what: another team's objects are not found (404, as in the API), and within a
team viewers read, editors make and manage clips, owners also set budgets and invite."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Budget
from tests.fixtures.html import page_without_tokens
from videos.models import GenerationJob, Invitation, JobState

pytestmark = pytest.mark.django_db

CLIP = {"kind": "text_to_video", "prompt": "A heron lands", "duration": "5", "request_id": "r1"}


def foreign_urls(world) -> list[tuple[str, str, dict]]:
    beta = world.beta
    project, job = beta.project.pk, beta.clip.pk
    return [
        ("get", reverse("portal:project", args=[project]), {}),
        ("get", reverse("portal:project-jobs", args=[project]), {}),
        ("get", reverse("portal:project-gallery", args=[project]), {}),
        ("post", reverse("portal:clip-create", args=[project]), CLIP),
        ("post", reverse("portal:clip-estimate", args=[project]), CLIP),
        (
            "post",
            reverse("portal:budget-set", args=[project]),
            {f"p{project}-monthly_cap_usd": "1"},
        ),
        ("get", reverse("portal:job", args=[job]), {}),
        ("get", reverse("portal:job-status", args=[job]), {}),
        ("post", reverse("portal:job-cancel", args=[beta.failed.pk]), {}),
        ("post", reverse("portal:job-retry", args=[beta.failed.pk]), {}),
    ]


def test_another_teams_objects_are_not_found_by_any_page_fragment_or_action(signed_in, world):
    client = signed_in(world.olga)  # an owner of Alpha, nothing in Beta
    for method, url, data in foreign_urls(world):
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, (method, url, response.status_code)
        assert "beta" not in page_without_tokens(response)
    # Nothing of Beta changed: no job made, canceled or retried, no budget touched.
    assert GenerationJob.objects.filter(team=world.beta.team).count() == 2
    assert world.beta.team.projects.get().budget.monthly_cap_usd == Decimal("10.00")


def test_a_missing_object_reads_exactly_like_another_teams(signed_in, world):
    client = signed_in(world.olga)
    foreign = client.get(reverse("portal:project", args=[world.beta.project.pk]))
    missing = client.get(reverse("portal:project", args=[999999]))
    assert foreign.status_code == missing.status_code == 404

    def main(response) -> str:  # the page without its per-response CSRF token
        return response.content.decode().split('<main id="content">')[1]

    assert main(foreign) == main(missing)


def test_the_team_switcher_offers_only_the_users_teams(signed_in, world):
    client = signed_in(world.olga)
    response = client.post(reverse("portal:team-switch"), {"team": world.beta.team.pk})
    assert response.status_code == 302
    home = client.get("/")
    assert home.context["seat"].team == world.alpha.team
    assert "You are not a member of that team." in home.content.decode()


@pytest.mark.parametrize(
    "action",
    ["clip-create", "clip-estimate", "job-cancel", "job-retry", "project-create"],
)
def test_viewers_cannot_make_or_change_clips(signed_in, world, action):
    alpha = world.alpha
    url = {
        "clip-create": reverse("portal:clip-create", args=[alpha.project.pk]),
        "clip-estimate": reverse("portal:clip-estimate", args=[alpha.project.pk]),
        "job-cancel": reverse("portal:job-cancel", args=[alpha.failed.pk]),
        "job-retry": reverse("portal:job-retry", args=[alpha.failed.pk]),
        "project-create": reverse("portal:project-create"),
    }[action]
    response = signed_in(world.vic).post(url, {**CLIP, "name": "Vic's"})
    assert response.status_code == 403
    assert "your role is viewer" in response.content.decode()
    assert GenerationJob.objects.filter(team=alpha.team).count() == 2
    assert alpha.team.projects.count() == 1


@pytest.mark.parametrize("who", ["erin", "vic"])
def test_only_owners_set_budgets_and_invite(signed_in, world, who):
    client = signed_in(getattr(world, who))
    project = world.alpha.project
    budget = client.post(
        reverse("portal:budget-set", args=[project.pk]), {f"p{project.pk}-monthly_cap_usd": "99"}
    )
    invite = client.post(reverse("portal:invite"), {"username": "zed", "role": "owner"})
    assert budget.status_code == invite.status_code == 403
    assert Budget.objects.get(project=project).monthly_cap_usd == Decimal("10.00")
    assert not Invitation.objects.filter(username="zed").exists()
    html = client.get(reverse("portal:team")).content.decode()
    assert "Invite someone" not in html
    assert "Set budget" not in client.get(reverse("portal:spend")).content.decode()


def test_editors_retry_and_cancel_in_their_team(signed_in, world):
    from tests.fixtures.data import make_job

    client = signed_in(world.erin)
    retry = client.post(reverse("portal:job-retry", args=[world.alpha.failed.pk]))
    new = GenerationJob.objects.get(retry_of=world.alpha.failed)
    assert retry["Location"] == reverse("portal:job", args=[new.pk])
    queued = make_job(world.alpha.project, state=JobState.QUEUED)
    client.post(reverse("portal:job-cancel", args=[queued.pk]))
    queued.refresh_from_db()
    assert queued.state == JobState.CANCELED
