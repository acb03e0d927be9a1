"""Projects through the API: scoped to the user's teams, written by editors, budgets by owners."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Budget, EntryKind, LedgerEntry
from billing.selectors import project_money
from tests.api.conftest import errors
from tests.fixtures.data import make_job
from videos.models import JobState, Project, Prompt, Team

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects/"


def test_the_list_holds_the_users_projects_with_their_money(alice_api, project, other_project):
    job = make_job(project, estimated_cost_usd=Decimal("0.55"))
    LedgerEntry.objects.create(
        project=project, job=job, kind=EntryKind.RESERVE, amount=Decimal("0.55")
    )
    done = make_job(project)
    LedgerEntry.objects.create(
        project=project, job=done, kind=EntryKind.CHARGE, amount=Decimal("0.28")
    )

    results = alice_api.get(PROJECTS).json()["results"]

    assert [p["id"] for p in results] == [project.pk]
    assert results[0]["monthly_budget_usd"] == "10.0000"
    assert results[0]["spent_this_month_usd"] == "0.2800"
    assert results[0]["reserved_usd"] == "0.5500"
    assert results[0]["remaining_this_month_usd"] == "9.1700"


def _with_money(project: Project, index: int) -> Project:
    """Some of everything the list shows: a charge, a reservation and a queued job."""
    Budget.objects.get_or_create(project=project, defaults={"monthly_cap_usd": Decimal(index + 5)})
    for state, kind, usd in [
        (JobState.SUCCEEDED, EntryKind.CHARGE, Decimal("0.28")),
        (JobState.SUBMITTED, EntryKind.RESERVE, Decimal("0.55")),
    ]:
        job = make_job(project, state=state, estimated_cost_usd=usd)
        LedgerEntry.objects.create(project=project, job=job, kind=kind, amount=usd)
    make_job(project, estimated_cost_usd=Decimal(index) / 100)
    return project


def test_the_list_reads_money_in_as_many_queries_for_50_projects_as_for_1(alice_api, project, team):
    def list_projects() -> tuple[int, list[dict]]:
        with CaptureQueriesContext(connection) as queries:
            response = alice_api.get(PROJECTS, {"page_size": 50})
        assert response.status_code == 200
        return len(queries), response.json()["results"]

    _with_money(project, 0)
    list_projects()  # the first request of a user also gives them their own team
    one, _ = list_projects()
    for index in range(1, 50):
        _with_money(Project.objects.create(team=team, name=f"Shot {index}"), index)
    fifty, results = list_projects()

    assert one == fifty
    assert len(results) == 50
    for row in results:
        money = project_money(Project.objects.get(pk=row["id"]))
        shown = row["spent_this_month_usd"], row["reserved_usd"], row["remaining_this_month_usd"]
        assert shown == tuple(
            f"{usd:.4f}" for usd in (money.spent_usd, money.reserved_usd, money.remaining_usd)
        )


def test_an_editor_creates_a_project_in_a_team(erin_api, team):
    response = erin_api.post(
        PROJECTS,
        {"name": "Spring", "team": team.pk, "default_duration": 10, "default_aspect_ratio": "9:16"},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["team"] == team.pk
    assert (body["default_duration"], body["default_aspect_ratio"], body["default_sound"]) == (
        10,
        "9:16",
        False,
    )
    assert body["monthly_budget_usd"] is None


def test_an_owner_creates_a_project_with_a_budget(alice_api, team):
    response = alice_api.post(
        PROJECTS, {"name": "Spring", "team": team.pk, "monthly_budget_usd": "25.5"}
    )
    assert response.status_code == 201
    assert response.json()["monthly_budget_usd"] == "25.5000"
    assert Budget.objects.get(project_id=response.json()["id"]).monthly_cap_usd == Decimal("25.5")


def test_editors_cannot_set_budgets_and_viewers_cannot_create(erin_api, vic_api, team):
    body = {"name": "Spring", "team": team.pk}
    assert erin_api.post(PROJECTS, {**body, "monthly_budget_usd": "5"}).status_code == 403
    assert vic_api.post(PROJECTS, body).status_code == 403
    assert not Project.objects.filter(name="Spring").exists()


def test_a_project_in_another_team_cannot_be_created(alice_api, other_team):
    response = alice_api.post(PROJECTS, {"name": "Spring", "team": other_team.pk})
    assert response.status_code == 400
    assert errors(response) == {"team": ["No team with this id in your teams."]}


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 201},
        {"name": "A", "default_duration": 7},
        {"name": "A", "default_aspect_ratio": "4:3"},
        {"name": "A", "monthly_budget_usd": "-1"},
        {"name": "A", "monthly_budget_usd": "NaN"},
        {"name": "A", "monthly_budget_usd": "1e20"},
        {},
    ],
)
def test_invalid_projects_are_refused(alice_api, project, body):
    response = alice_api.post(PROJECTS, body)
    assert response.status_code == 400, response.json()


def test_a_name_taken_in_the_team_is_refused(alice_api, project):
    response = alice_api.post(PROJECTS, {"name": "Launch", "team": project.team_id})
    assert response.status_code == 400
    assert "name" in errors(response)


def test_another_teams_project_is_not_found(alice_api, other_project):
    url = f"{PROJECTS}{other_project.pk}/"
    assert alice_api.get(url).status_code == 404
    assert alice_api.patch(url, {"name": "Mine"}).status_code == 404
    assert alice_api.delete(url).status_code == 404
    other_project.refresh_from_db()
    assert other_project.name == "Launch"


@pytest.mark.parametrize("project_id", ["abc", "0", "-1", str(10**30)])
def test_malformed_project_ids_are_not_found(alice_api, project_id):
    assert alice_api.get(f"{PROJECTS}{project_id}/").status_code == 404


def test_an_editor_changes_name_and_defaults(erin_api, project):
    response = erin_api.patch(
        f"{PROJECTS}{project.pk}/", {"name": "Relaunch", "default_sound": True}
    )
    assert response.status_code == 200
    project.refresh_from_db()
    assert (project.name, project.default_sound) == ("Relaunch", True)


def test_only_owners_change_the_budget(alice_api, erin_api, vic_api, project):
    url = f"{PROJECTS}{project.pk}/"
    assert vic_api.patch(url, {"name": "x"}).status_code == 403
    assert erin_api.patch(url, {"monthly_budget_usd": "99"}).status_code == 403

    assert (
        alice_api.patch(url, {"monthly_budget_usd": "99"}).json()["monthly_budget_usd"] == "99.0000"
    )
    assert alice_api.patch(url, {"monthly_budget_usd": None}).json()["monthly_budget_usd"] is None
    assert not Budget.objects.filter(project=project).exists()


def test_a_taken_name_is_refused_on_rename(alice_api, team, project):
    Project.objects.create(team=team, name="Other")
    response = alice_api.patch(f"{PROJECTS}{project.pk}/", {"name": "Other"})
    assert response.status_code == 400
    assert "name" in errors(response)


def test_an_empty_project_can_be_deleted_by_an_owner(alice_api, erin_api, team):
    empty = Project.objects.create(team=team, name="Empty")
    Budget.objects.create(project=empty, monthly_cap_usd=Decimal("1"))
    assert erin_api.delete(f"{PROJECTS}{empty.pk}/").status_code == 403
    assert alice_api.delete(f"{PROJECTS}{empty.pk}/").status_code == 204
    assert not Project.objects.filter(pk=empty.pk).exists()


def test_a_project_with_history_is_kept(alice_api, project, team):
    make_job(project)
    with_prompt = Project.objects.create(team=team, name="Prompted")
    Prompt.objects.create(project=with_prompt, title="T")

    for kept in (project, with_prompt):
        response = alice_api.delete(f"{PROJECTS}{kept.pk}/")
        assert response.status_code == 409
        assert response.json()["code"] == "project_not_empty"
        assert Project.objects.filter(pk=kept.pk).exists()


def test_a_user_without_a_team_gets_a_personal_one(as_user, django_user_model):
    dana = django_user_model.objects.create_user(username="dana", password="dana-pw-1")
    api = as_user(dana)

    teams = api.get("/api/v1/teams/").json()["results"]
    created = api.post(PROJECTS, {"name": "First"})

    assert [(t["name"], t["role"]) for t in teams] == [("dana's team", "owner")]
    assert created.status_code == 201
    assert Team.objects.filter(memberships__user=dana).count() == 1


def test_a_project_chooses_its_provider_and_its_jobs_follow_it(alice_api, project, settings):
    url = f"{PROJECTS}{project.pk}/"
    assert alice_api.get(url).json()["provider"] == "kie"
    answer = alice_api.patch(url, {"provider": "kling"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["provider"] == "kling"
    assert alice_api.patch(url, {"provider": "runway"}, format="json").status_code == 400

    settings.KLING_ACCESS_KEY = ""
    refused = alice_api.patch(url, {"provider": "kie"}, format="json")
    assert refused.status_code == 200  # back to kie.ai needs no Kling keys
    refused = alice_api.patch(url, {"provider": "kling"}, format="json")
    assert refused.status_code == 400
    assert "KLING_ACCESS_KEY" in str(errors(refused))
