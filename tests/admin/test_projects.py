"""Projects and their budgets through the admin: created, changed and deleted by the project
services, the budget written by `billing.services.budget_set`; the Budget admin only shows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from billing import services as billing_services
from billing.models import Budget
from tests.admin.pages import form_data, page_text
from tests.fixtures.data import make_job
from videos.models import Project

pytestmark = pytest.mark.django_db
ADD_URL = reverse("admin:videos_project_add")
LIST_URL = reverse("admin:videos_project_changelist")
HAS_JOBS = "The project has jobs, which are kept forever; it cannot be deleted."


def change_url(project: Project) -> str:
    return reverse("admin:videos_project_change", args=[project.pk])


@pytest.fixture
def budget_set_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    real = billing_services.budget_set

    def recording(**kwargs: Any) -> Budget | None:
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(billing_services, "budget_set", recording)
    return calls


def test_a_project_is_created_with_its_budget(admin_client, team, budget_set_calls):
    data = form_data(admin_client.get(ADD_URL))
    data.update(team=team.pk, name="Trailer", monthly_cap_usd="25", warning_threshold="0.5")

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302
    project = Project.objects.get(name="Trailer")
    assert project.team == team
    budget = Budget.objects.get(project=project)
    assert (budget.monthly_cap_usd, budget.warning_threshold) == (Decimal(25), Decimal("0.5"))
    assert [call["project"] for call in budget_set_calls] == [project]


def test_a_project_without_a_budget_has_no_cap(admin_client, team, budget_set_calls):
    data = form_data(admin_client.get(ADD_URL))
    data.update(team=team.pk, name="Trailer")

    assert admin_client.post(ADD_URL, data).status_code == 302
    assert not Budget.objects.filter(project__name="Trailer").exists()
    assert budget_set_calls == []


def test_a_taken_name_is_the_services_form_error(admin_client, team, project):
    data = form_data(admin_client.get(ADD_URL))
    data.update(team=team.pk, name=project.name, monthly_cap_usd="5")

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    assert "The team has a project with this name already." in page_text(response)
    assert Project.objects.count() == 1


def test_the_budget_is_changed_through_budget_set(admin_client, project, budget_set_calls):
    page = admin_client.get(change_url(project))
    data = form_data(page)
    assert data["monthly_cap_usd"] == "10.0000"
    data.update(monthly_cap_usd="20", warning_threshold="0.9")

    assert admin_client.post(change_url(project), data).status_code == 302

    assert budget_set_calls == [
        {"project": project, "monthly_cap_usd": Decimal(20), "warning_threshold": Decimal("0.9")}
    ]
    budget = Budget.objects.get(project=project)
    assert (budget.monthly_cap_usd, budget.warning_threshold) == (Decimal(20), Decimal("0.9"))


def test_a_blank_budget_lifts_the_cap(admin_client, project, budget_set_calls):
    data = form_data(admin_client.get(change_url(project)))
    data["monthly_cap_usd"] = ""

    assert admin_client.post(change_url(project), data).status_code == 302
    assert not Budget.objects.filter(project=project).exists()
    assert len(budget_set_calls) == 1


def test_a_rename_goes_through_project_update_and_leaves_the_budget(
    admin_client, project, budget_set_calls
):
    data = form_data(admin_client.get(change_url(project)))
    data.update(name="Relaunch", default_duration="10")

    assert admin_client.post(change_url(project), data).status_code == 302
    project.refresh_from_db()
    assert (project.name, project.default_duration) == ("Relaunch", 10)
    assert budget_set_calls == []


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"monthly_cap_usd": "-1"}, "The monthly budget must not be negative."),
        ({"warning_threshold": "1.5"}, "The warning threshold is a fraction of the budget"),
        ({"warning_threshold": "0"}, "The warning threshold is a fraction of the budget"),
    ],
)
def test_a_refused_budget_is_a_form_error_and_nothing_is_saved(
    admin_client, project, fields, message
):
    data = form_data(admin_client.get(change_url(project)))
    data.update(name="Relaunch", **fields)

    response = admin_client.post(change_url(project), data)

    assert response.status_code == 200
    assert message in page_text(response)
    project.refresh_from_db()
    assert project.name == "Launch"
    budget = Budget.objects.get(project=project)
    assert (budget.monthly_cap_usd, budget.warning_threshold) == (Decimal(10), Decimal("0.8"))


def test_a_project_with_jobs_is_not_deleted(admin_client, project):
    make_job(project)
    delete_url = reverse("admin:videos_project_delete", args=[project.pk])

    # Refused before anyone is asked to confirm, and refused if confirmed anyway.
    for response in [
        admin_client.get(delete_url, follow=True),
        admin_client.post(delete_url, {"post": "yes"}, follow=True),
    ]:
        assert response.redirect_chain[-1][0] == change_url(project)
        assert HAS_JOBS in page_text(response)
    assert Project.objects.filter(pk=project.pk).exists()


def test_a_bulk_delete_of_a_project_with_jobs_deletes_nothing(admin_client, team, project):
    make_job(project)
    empty = Project.objects.create(team=team, name="Empty")
    action = {
        "action": "delete_selected",
        "_selected_action": [empty.pk, project.pk],
        "post": "yes",
    }

    response = admin_client.post(LIST_URL, action, follow=True)

    assert HAS_JOBS in page_text(response)
    assert Project.objects.count() == 2


def test_an_empty_project_is_deleted_with_its_budget(admin_client, project):
    response = admin_client.post(
        reverse("admin:videos_project_delete", args=[project.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Project.objects.exists()
    assert not Budget.objects.exists()


def test_the_budget_admin_only_shows(admin_client, project):
    budget = Budget.objects.get(project=project)
    budget_url = reverse("admin:billing_budget_change", args=[budget.pk])

    assert admin_client.get(reverse("admin:billing_budget_changelist")).status_code == 200
    assert admin_client.get(budget_url).status_code == 200
    assert admin_client.post(budget_url, {"monthly_cap_usd": "99"}).status_code == 403
    assert admin_client.get(reverse("admin:billing_budget_add")).status_code == 403
    budget.refresh_from_db()
    assert budget.monthly_cap_usd == Decimal(10)
