"""The admin narrows everything to the user's teams: a staff editor of Alpha walks every admin
page and action (lists with their filters and facets, search, change pages by URL, add forms'
dropdowns, autocomplete, inlines, actions) and never sees or changes anything of Beta. Roles
mean what they mean in the API; superusers see all."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from billing.models import Budget
from tests.admin.conftest import BETA_MARKERS
from tests.admin.pages import form_data, page_text
from tests.fixtures.data import make_job
from videos.admin_scope import TEAM_PATHS, SuperusersOnly, TeamScopedAdmin
from videos.models import (
    GenerationJob,
    Invitation,
    InvitationStatus,
    JobState,
    Membership,
    Prompt,
    PromptVersion,
    Role,
)

pytestmark = pytest.mark.django_db
NOT_FOUND = "doesn’t exist"  # noqa: RUF001 (Django's own wording)


def url(obj_or_model: Any, view: str, *args: Any) -> str:
    opts = obj_or_model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def change_url(obj: Any) -> str:
    return url(obj, "change", quote(obj.pk))


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_nothing_of_beta(page: Any, where: str = "") -> None:
    text = page_text(page)
    shown = [marker for marker in BETA_MARKERS if marker in text]
    assert not shown, f"{where or page.request['PATH_INFO']} shows Beta's {shown}"


def beta_objects(world: Any) -> list[Any]:
    beta = world.beta
    return [
        beta.team,
        beta.project,
        beta.budget,
        beta.prompt,
        beta.version,
        beta.job,
        beta.event,
        beta.asset,
        beta.entry,
        beta.invitation,
        beta.membership,
    ]


def scoped_admins() -> list[tuple[type, Any]]:
    return [(m, a) for m, a in admin.site._registry.items() if isinstance(a, TeamScopedAdmin)]


# --- Every admin is either team-scoped or for superusers -------------------------------------


def test_every_admin_is_team_scoped_or_for_superusers_only():
    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, TeamScopedAdmin):
            assert model._meta.label in TEAM_PATHS, model
            for inline in model_admin.inlines:
                assert issubclass(inline, TeamScopedAdmin), inline
        else:
            assert isinstance(model_admin, SuperusersOnly), model


def test_the_site_is_branded(client, world):
    client.force_login(world.erin)
    page = client.get(reverse("admin:index"))
    assert "<title>Editors&#x27; workbench | Reelforge</title>" in page_text(page)
    assert "Django administration" not in page_text(page)
    assert 'id="site-name"><a href="/admin/">Reelforge</a>' in page_text(page)


# --- Walking every page as an editor of Alpha ------------------------------------------------


def test_the_index_lists_team_models_and_provider_status_only(world):
    page = client_for(world.erin).get(reverse("admin:index"))

    assert page.status_code == 200
    assert_nothing_of_beta(page)
    shown = {m["object_name"] for app in page.context["app_list"] for m in app["models"]}
    assert {"GenerationJob", "Prompt", "Project", "LedgerEntry", "Membership"} <= shown
    assert not shown & {"Team", "Price", "ProviderAccount", "User", "Group", "TokenProxy"}
    assert not {"Schedule", "Success", "Failure", "OrmQ"} & shown
    # Alpha's one failed job, not Beta's.
    counts = {row["state"]: row["jobs"] for row in page.context["jobs_by_state"]}
    assert counts[JobState.FAILED] == 1
    assert "Provider status" in page_text(page)


def test_every_list_its_filters_and_facets_show_only_alpha(world):
    erin = client_for(world.erin)
    for model, model_admin in admin.site._registry.items():
        for query in ["", "?_facets=1", "?all="]:
            page = erin.get(url(model, "changelist") + query)
            if isinstance(model_admin, TeamScopedAdmin):
                assert page.status_code == 200, (model, page.status_code)
                assert_nothing_of_beta(page)
                for spec in page.context["cl"].filter_specs:
                    choices = str(list(spec.choices(page.context["cl"])))
                    assert not [m for m in BETA_MARKERS if m in choices], (model, spec.title)
            else:
                assert page.status_code == 403, model


def test_each_list_shows_alphas_rows(world):
    erin = client_for(world.erin)
    alpha = world.alpha
    for obj in [alpha.project, alpha.prompt, alpha.job, alpha.entry, alpha.budget, alpha.event]:
        page = erin.get(url(obj, "changelist"))
        assert [row.pk for row in page.context["cl"].result_list] == [obj.pk], obj


def test_betas_objects_by_url_do_not_exist(world):
    erin = client_for(world.erin)
    for obj in beta_objects(world):
        for view in ["change", "history", "delete"]:
            page = erin.get(url(obj, view, quote(obj.pk)), follow=True)
            assert_nothing_of_beta(page, f"{view} of {obj!r}")
            # Not found, or refused before it is looked up: never shown, and never refused
            # only because it exists (superusers-only rows included).
            assert NOT_FOUND in page_text(page) or page.status_code == 403, (obj, view)
            if view == "history":
                assert NOT_FOUND in page_text(page), (obj, view)


def test_the_view_on_site_shortcut_tells_staff_nothing(world, admin_client):
    from django.contrib.contenttypes.models import ContentType

    erin = client_for(world.erin)
    for obj in [world.beta.project, world.alpha.project]:
        content_type = ContentType.objects.get_for_model(obj)
        shortcut = reverse("admin:view_on_site", args=[content_type.pk, obj.pk])
        assert erin.get(shortcut).status_code == 404
    assert admin_client.get(shortcut).status_code == 404  # no page outside the admin


def test_posting_to_betas_objects_changes_nothing(world):
    erin = client_for(world.erin)
    beta = world.beta
    prompt_url = change_url(beta.prompt)
    response = erin.post(prompt_url, {"title": "Hijacked", "text": "hijacked text"}, follow=True)
    assert NOT_FOUND in page_text(response) or response.status_code == 403
    response = erin.post(change_url(beta.project), {"name": "Hijacked", "monthly_cap_usd": "0"})
    assert response.status_code in (302, 403)
    erin.post(url(beta.membership, "delete", beta.membership.pk), {"post": "yes"})

    beta.prompt.refresh_from_db()
    beta.project.refresh_from_db()
    assert beta.prompt.title == "Beta-secret-prompt"
    assert list(beta.prompt.versions.values_list("text", flat=True)) == ["beta-secret-text"]
    assert beta.project.name == "Beta-secret-project"
    assert Budget.objects.get(project=beta.project).monthly_cap_usd == Decimal("77.77")
    assert Membership.objects.filter(pk=beta.membership.pk).exists()


def test_add_forms_offer_only_teams_where_the_user_may_write(world):
    erin = client_for(world.erin)
    beta = world.beta
    for model in [GenerationJob, Prompt, world.alpha.project.__class__, Invitation]:
        page = erin.get(url(model, "add"))
        assert page.status_code == 200, model
        assert_nothing_of_beta(page)
        form = page.context["adminform"].form
        for name, field in form.fields.items():
            queryset = getattr(field, "queryset", None)
            if queryset is not None:
                assert beta.team not in queryset and beta.project not in queryset, (model, name)
                assert beta.version not in queryset, (model, name)
    # Only her own (personal) team takes invitations from her: she owns no other.
    teams = erin.get(url(Invitation, "add")).context["adminform"].form.fields["team"].queryset
    assert [team.personal_for for team in teams] == [world.erin]


def test_a_job_charged_to_betas_project_is_refused(world):
    erin = client_for(world.erin)
    beta = world.beta
    response = erin.post(
        url(GenerationJob, "add"),
        {
            "project": beta.project.pk,
            "kind": "text_to_video",
            "prompt": "Charge it to Beta",
            "duration": "5",
            "aspect_ratio": "16:9",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in page_text(response)
    response = erin.post(
        url(GenerationJob, "add"),
        {
            "project": world.alpha.project.pk,
            "kind": "text_to_video",
            "duration": "5",
            "aspect_ratio": "16:9",
            "prompt_version": beta.version.pk,
        },
    )
    assert "Select a valid choice" in page_text(response)
    assert not GenerationJob.objects.filter(project=beta.project).exclude(pk=beta.job.pk).exists()
    assert not GenerationJob.objects.filter(created_by=world.erin).exists()


def test_a_prompt_in_betas_project_is_refused(world):
    erin = client_for(world.erin)
    response = erin.post(
        url(Prompt, "add"),
        {
            "project": world.beta.project.pk,
            "title": "Mine now",
            "text": "A prompt",
        },
    )
    assert "Select a valid choice" in page_text(response)
    assert not Prompt.objects.filter(title="Mine now").exists()


def test_search_finds_nothing_of_beta(world):
    erin = client_for(world.erin)
    searches = {
        GenerationJob: ["beta-secret-job", "beta-task-777", str(world.beta.job.pk)],
        Prompt: ["beta-secret-text", "Beta-secret-prompt"],
        PromptVersion: ["beta-secret-text"],
        Membership: ["bob_beta_secret", "Beta"],
        Invitation: ["beta-invitee"],
        world.beta.entry.__class__: ["beta-secret-ledger"],
        world.beta.project.__class__: ["Beta-secret-project"],
    }
    for model, terms in searches.items():
        for term in terms:
            page = erin.get(url(model, "changelist"), {"q": term})
            assert page.status_code == 200
            assert list(page.context["cl"].result_list) == [], (model, term)
    # The same searches find Alpha's rows.
    page = erin.get(url(GenerationJob, "changelist"), {"q": str(world.alpha.job.pk)})
    assert list(page.context["cl"].result_list) == [world.alpha.job]


def test_filtering_by_betas_project_shows_nothing(world):
    erin = client_for(world.erin)
    page = erin.get(url(GenerationJob, "changelist"), {"project__id__exact": world.beta.project.pk})
    assert list(page.context["cl"].result_list) == []
    assert_nothing_of_beta(page)
    page = erin.get(url(GenerationJob, "changelist"), {"error_code": "beta_code"})
    assert list(page.context["cl"].result_list) == []


def test_autocomplete_offers_only_what_the_form_would_take(world):
    autocomplete = reverse("admin:autocomplete")
    query = {"app_label": "videos", "model_name": "generationjob", "field_name": "prompt_version"}

    erin = client_for(world.erin).get(autocomplete, {**query, "term": ""})
    assert erin.status_code == 200
    assert [r["id"] for r in erin.json()["results"]] == [str(world.alpha.version.pk)]
    assert (
        client_for(world.erin).get(autocomplete, {**query, "term": "beta"}).json()["results"] == []
    )
    # A viewer of Alpha cannot add jobs there: nothing to offer.
    assert client_for(world.vic).get(autocomplete, {**query, "term": ""}).json()["results"] == []
    # Users and teams are superusers' alone.
    for field in ["user", "team"]:
        page = client_for(world.erin).get(
            autocomplete, {"app_label": "videos", "model_name": "membership", "field_name": field}
        )
        assert page.status_code == 403
        assert_nothing_of_beta(page, f"autocomplete of {field}")


def test_inlines_show_the_objects_own_rows(world):
    erin = client_for(world.erin)
    page = erin.get(change_url(world.alpha.prompt))
    [versions] = page.context["inline_admin_formsets"]
    assert [form.instance for form in versions.formset.forms] == [world.alpha.version]
    page = erin.get(change_url(world.alpha.job))
    [events] = page.context["inline_admin_formsets"]
    assert [form.instance for form in events.formset.forms] == [world.alpha.event]
    assert not events.has_add_permission and not events.has_change_permission


# --- Actions ---------------------------------------------------------------------------------


def post_action(client: Client, model: Any, action: str, objs: list[Any], **extra: Any) -> Any:
    return client.post(
        url(model, "changelist"),
        {"action": action, "_selected_action": [quote(o.pk) for o in objs], "post": "yes", **extra},
        follow=True,
    )


def test_actions_touch_only_alphas_rows(world):
    erin = client_for(world.erin)
    alpha_job = make_job(world.alpha.project)
    beta_job = make_job(world.beta.project, prompt_text="beta-secret-job queued")

    post_action(erin, GenerationJob, "cancel_jobs", [alpha_job, beta_job])
    alpha_job.refresh_from_db()
    beta_job.refresh_from_db()
    assert (alpha_job.state, beta_job.state) == (JobState.CANCELED, JobState.QUEUED)

    # Selecting across all pages selects across Alpha's rows only.
    another = make_job(world.beta.project, prompt_text="beta-secret-job queued")
    post_action(erin, GenerationJob, "cancel_jobs", [], select_across="1", index="0")
    another.refresh_from_db()
    assert another.state == JobState.QUEUED

    post_action(erin, GenerationJob, "retry_jobs", [world.beta.job])
    assert not world.beta.job.retries.exists()

    page = post_action(erin, Prompt, "generate_clips", [world.beta.prompt], options="1")
    assert_nothing_of_beta(page)
    assert GenerationJob.objects.filter(project=world.beta.project).count() == 3

    post_action(erin, Membership, "delete_selected", [world.beta.membership])
    post_action(erin, Invitation, "revoke_invitations", [world.beta.invitation])
    assert Membership.objects.filter(pk=world.beta.membership.pk).exists()
    world.beta.invitation.refresh_from_db()
    assert world.beta.invitation.status == InvitationStatus.PENDING


def test_a_confirmation_page_lists_only_alphas_rows(world):
    erin = client_for(world.erin)
    beta_job = make_job(world.beta.project, prompt_text="beta-secret-job queued")
    for action in [
        "cancel_jobs",
        "retry_jobs",
        "retry_retrieval",
        "resolve_needs_attention",
        "give_up_jobs",
    ]:
        page = erin.post(
            url(GenerationJob, "changelist"),
            {
                "action": action,
                "_selected_action": [world.alpha.job.pk, beta_job.pk],
            },
        )
        assert page.status_code == 200, action
        assert [row[0] for row in page.context["rows"]] == [world.alpha.job], action
        assert_nothing_of_beta(page, action)


# --- Roles -----------------------------------------------------------------------------------


def test_a_viewer_reads_and_cannot_change(world):
    vic = client_for(world.vic)
    alpha = world.alpha
    page = vic.get(change_url(alpha.prompt))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    # His own team is all he may add jobs or prompts to.
    for model in [GenerationJob, Prompt]:
        form = vic.get(url(model, "add")).context["adminform"].form
        assert alpha.project not in form.fields["project"].queryset
    page = vic.post(change_url(alpha.prompt), {"title": "Changed", "text": "changed"})
    assert page.status_code == 403
    alpha.prompt.refresh_from_db()
    assert alpha.prompt.title == "alpha prompt"
    # Actions for editors are not offered to someone who is only a viewer (here, once vic has
    # left his own team); posting one anyway changes nothing.
    Membership.objects.filter(user=world.vic).exclude(team=alpha.team).delete()
    assert vic.get(url(GenerationJob, "changelist")).context["action_form"] is None
    job = make_job(alpha.project)
    post_action(vic, GenerationJob, "cancel_jobs", [job])
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


def test_an_editor_changes_a_project_but_not_its_budget(world):
    erin = client_for(world.erin)
    project = world.alpha.project
    page = erin.get(change_url(project))
    assert "monthly_cap_usd" not in page.context["adminform"].form.fields
    assert "Owners of the team set the budget." in page_text(page)
    data = form_data(page)
    data.update(name="Renamed", monthly_cap_usd="0")

    assert erin.post(change_url(project), data).status_code == 302
    project.refresh_from_db()
    assert project.name == "Renamed"
    assert Budget.objects.get(project=project).monthly_cap_usd == Decimal("50.00")
    assert erin.post(url(project, "delete", project.pk), {"post": "yes"}).status_code == 403


def test_an_editor_cannot_put_a_budget_on_a_new_project_of_a_team_she_does_not_own(world):
    erin = client_for(world.erin)
    page = erin.get(url(world.alpha.project, "add"))
    data = form_data(page)
    data.update(team=world.alpha.team.pk, name="Teaser", monthly_cap_usd="5")

    response = erin.post(url(world.alpha.project, "add"), data)

    assert "Only owners of the team can do this; your role is editor." in page_text(response)
    assert not world.alpha.project.__class__.objects.filter(name="Teaser").exists()


def test_an_owner_sets_budgets_invites_and_removes_members(world):
    olive = client_for(world.olive)
    project = world.alpha.project
    data = form_data(olive.get(change_url(project)))
    data["monthly_cap_usd"] = "80"
    assert olive.post(change_url(project), data).status_code == 302
    assert Budget.objects.get(project=project).monthly_cap_usd == Decimal(80)

    response = olive.post(
        url(Invitation, "add"),
        {
            "team": world.alpha.team.pk,
            "username": "newcomer",
            "email": "",
            "role": Role.EDITOR,
        },
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(username="newcomer")
    assert (invitation.team, invitation.invited_by) == (world.alpha.team, world.olive)

    vic_membership = Membership.objects.get(user=world.vic, team=world.alpha.team)
    response = olive.post(url(Membership, "delete", vic_membership.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=vic_membership.pk).exists()


def test_an_editor_neither_invites_nor_removes_members_of_alpha(world):
    erin = client_for(world.erin)
    response = erin.post(
        url(Invitation, "add"),
        {
            "team": world.alpha.team.pk,
            "username": "newcomer",
            "role": Role.OWNER,
        },
    )
    assert "Select a valid choice" in page_text(response)
    assert not Invitation.objects.filter(username="newcomer").exists()
    # Alpha's invitations are its owners' to see.
    page = erin.get(url(Invitation, "changelist"))
    assert world.alpha.invitation not in page.context["cl"].result_list
    vic_membership = Membership.objects.get(user=world.vic, team=world.alpha.team)
    assert (
        erin.post(url(Membership, "delete", vic_membership.pk), {"post": "yes"}).status_code == 403
    )
    assert erin.get(change_url(vic_membership)).context["has_change_permission"] is False
    assert Membership.objects.filter(pk=vic_membership.pk).exists()


def test_a_superuser_sees_every_team(admin_client, world):
    page = admin_client.get(url(GenerationJob, "changelist"))
    assert {world.alpha.job, world.beta.job} <= set(page.context["cl"].result_list)
    assert "beta-secret-job" in page_text(admin_client.get(change_url(world.beta.job)))
    assert admin_client.get(change_url(world.beta.team)).status_code == 200
