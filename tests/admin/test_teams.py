"""Teams and members through the admin: every role change, removal and addition is a
membership service call, so a team never loses its last owner through this door either."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.admin.pages import add_inline_row, form_data, inline_row, page_text
from tests.fixtures.data import make_member
from videos.models import Membership, Role, Team

pytestmark = pytest.mark.django_db
LAST_OWNER = "A team needs an owner: make someone else owner first."
MEMBERS_URL = reverse("admin:videos_membership_changelist")


def team_url(team: Team) -> str:
    return reverse("admin:videos_team_change", args=[team.pk])


def membership_url(membership: Membership) -> str:
    return reverse("admin:videos_membership_change", args=[membership.pk])


def role_of(user, team: Team) -> str:
    return Membership.objects.get(user=user, team=team).role


# --- The team page and its member rows -------------------------------------------------------


def test_the_last_owner_cannot_be_demoted_on_the_team_page(admin_client, team, alice):
    page = admin_client.get(team_url(team))
    data = form_data(page)
    data[f"{inline_row(page, alice.memberships.get())}-role"] = Role.EDITOR

    response = admin_client.post(team_url(team), data)

    assert response.status_code == 200
    assert LAST_OWNER in page_text(response)
    assert role_of(alice, team) == Role.OWNER


def test_the_last_owner_cannot_be_removed_on_the_team_page(admin_client, team, alice):
    page = admin_client.get(team_url(team))
    data = form_data(page)
    data[f"{inline_row(page, alice.memberships.get())}-DELETE"] = "on"

    response = admin_client.post(team_url(team), data)

    assert response.status_code == 200
    assert LAST_OWNER in page_text(response)
    assert role_of(alice, team) == Role.OWNER


def test_a_refused_save_keeps_the_rest_of_the_page_unsaved(admin_client, team, alice):
    erin = make_member("erin", team, Role.VIEWER)
    page = admin_client.get(team_url(team))
    data = form_data(page)
    data["name"] = "Renamed"
    data[f"{inline_row(page, erin.memberships.get())}-role"] = Role.EDITOR
    data[f"{inline_row(page, alice.memberships.get())}-role"] = Role.VIEWER

    response = admin_client.post(team_url(team), data)

    assert LAST_OWNER in page_text(response)
    # Shown as sent, so the editor can fix it and save again.
    assert 'value="Renamed"' in page_text(response)
    team.refresh_from_db()
    assert team.name == "Alpha"
    assert role_of(erin, team) == Role.VIEWER
    assert role_of(alice, team) == Role.OWNER


def test_ownership_is_handed_over_in_one_save(admin_client, team, alice):
    erin = make_member("erin", team, Role.EDITOR)
    page = admin_client.get(team_url(team))
    data = form_data(page)
    # alice's row comes first on the page: her demotion must still wait for erin's promotion.
    data[f"{inline_row(page, alice.memberships.get())}-role"] = Role.VIEWER
    data[f"{inline_row(page, erin.memberships.get())}-role"] = Role.OWNER

    response = admin_client.post(team_url(team), data)

    assert response.status_code == 302
    assert role_of(alice, team) == Role.VIEWER
    assert role_of(erin, team) == Role.OWNER


def test_an_owner_leaves_when_a_new_owner_is_added_in_the_same_save(admin_client, team, alice):
    carol = get_user_model().objects.create_user(username="carol")
    page = admin_client.get(team_url(team))
    data = form_data(page)
    data[f"{inline_row(page, alice.memberships.get())}-DELETE"] = "on"
    add_inline_row(data, "memberships", user=carol.pk, role=Role.OWNER)

    response = admin_client.post(team_url(team), data)

    assert response.status_code == 302
    assert list(team.memberships.values_list("user__username", "role")) == [("carol", "owner")]


def test_a_member_is_added_on_the_team_page(admin_client, team, alice):
    carol = get_user_model().objects.create_user(username="carol")
    data = form_data(admin_client.get(team_url(team)))
    add_inline_row(data, "memberships", user=carol.pk, role=Role.VIEWER)

    response = admin_client.post(team_url(team), data)

    assert response.status_code == 302
    assert role_of(carol, team) == Role.VIEWER


def test_a_member_row_cannot_be_given_to_another_user(admin_client, team, alice):
    carol = get_user_model().objects.create_user(username="carol")
    page = admin_client.get(team_url(team))
    data = form_data(page)
    data[f"{inline_row(page, alice.memberships.get())}-user"] = carol.pk

    admin_client.post(team_url(team), data)

    assert list(team.memberships.values_list("user__username", flat=True)) == ["alice"]


def test_a_team_is_created_with_its_owner(admin_client, prices):
    carol = get_user_model().objects.create_user(username="carol")
    add_url = reverse("admin:videos_team_add")
    data = form_data(admin_client.get(add_url))
    data.update(name="Gamma", slug="gamma")
    add_inline_row(data, "memberships", user=carol.pk, role=Role.OWNER)

    response = admin_client.post(add_url, data)

    assert response.status_code == 302
    team = Team.objects.get(slug="gamma")
    assert role_of(carol, team) == Role.OWNER


def test_a_taken_slug_is_a_form_error(admin_client, team, other_team, alice):
    data = form_data(admin_client.get(team_url(team)))
    data["slug"] = other_team.slug

    response = admin_client.post(team_url(team), data)

    assert response.status_code == 200
    assert "Another team has this slug." in page_text(response)
    team.refresh_from_db()
    assert team.slug == "alpha"


def test_a_team_with_projects_is_not_deleted(admin_client, team, project):
    delete_url = reverse("admin:videos_team_delete", args=[team.pk])

    for response in [
        admin_client.get(delete_url, follow=True),
        admin_client.post(delete_url, {"post": "yes"}, follow=True),
    ]:
        assert "The team has projects" in page_text(response)
    assert Team.objects.filter(pk=team.pk).exists()


def test_a_team_without_projects_is_deleted_with_its_members(admin_client, team, alice):
    response = admin_client.post(
        reverse("admin:videos_team_delete", args=[team.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Team.objects.filter(pk=team.pk).exists()
    assert not Membership.objects.filter(user=alice).exists()


# --- The membership admin --------------------------------------------------------------------


def test_the_last_owner_cannot_be_demoted_in_the_membership_admin(admin_client, team, alice):
    membership = alice.memberships.get()
    data = form_data(admin_client.get(membership_url(membership)))
    data["role"] = Role.EDITOR

    response = admin_client.post(membership_url(membership), data)

    assert response.status_code == 200
    assert LAST_OWNER in page_text(response)
    assert role_of(alice, team) == Role.OWNER


def test_a_role_is_changed_in_the_membership_admin(admin_client, team, alice):
    membership = make_member("erin", team, Role.EDITOR).memberships.get()
    data = form_data(admin_client.get(membership_url(membership)))
    data["role"] = Role.OWNER

    assert admin_client.post(membership_url(membership), data).status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_the_last_owner_cannot_be_deleted_in_the_membership_admin(admin_client, team, alice):
    membership = alice.memberships.get()
    delete_url = reverse("admin:videos_membership_delete", args=[membership.pk])

    response = admin_client.post(delete_url, {"post": "yes"}, follow=True)

    assert LAST_OWNER in page_text(response)
    assert role_of(alice, team) == Role.OWNER


def test_a_bulk_delete_keeps_the_last_owner_and_deletes_nothing(admin_client, team, alice):
    carol = make_member("carol", team, Role.OWNER)
    erin = make_member("erin", team, Role.EDITOR)
    chosen = [m.pk for m in Membership.objects.filter(team=team)]
    action = {"action": "delete_selected", "_selected_action": chosen}

    confirm = admin_client.post(MEMBERS_URL, action)
    assert "Are you sure" in page_text(confirm)
    response = admin_client.post(MEMBERS_URL, {**action, "post": "yes"}, follow=True)

    assert LAST_OWNER in page_text(response)
    # All or nothing: the editor and the first owner are still there too.
    assert {role_of(alice, team), role_of(carol, team), role_of(erin, team)} == {
        Role.OWNER,
        Role.EDITOR,
    }


def test_a_bulk_delete_that_leaves_an_owner_deletes(admin_client, team, alice):
    erin = make_member("erin", team, Role.EDITOR)
    action = {
        "action": "delete_selected",
        "_selected_action": [erin.memberships.get().pk],
        "post": "yes",
    }

    response = admin_client.post(MEMBERS_URL, action, follow=True)

    assert "Successfully deleted 1 membership." in page_text(response)
    assert list(team.memberships.values_list("user__username", flat=True)) == ["alice"]


def test_a_member_is_added_in_the_membership_admin(admin_client, team, alice):
    carol = get_user_model().objects.create_user(username="carol")
    add_url = reverse("admin:videos_membership_add")

    response = admin_client.post(add_url, {"user": carol.pk, "team": team.pk, "role": "viewer"})

    assert response.status_code == 302
    assert role_of(carol, team) == Role.VIEWER


def test_only_superusers_add_members_or_reach_teams_whatever_their_model_permissions(
    client, team, alice
):
    staff = get_user_model().objects.create_user(username="sam", password="sam-pw-1", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(codename__endswith="_membership")
        | Permission.objects.filter(codename__endswith="_team")
    )
    Membership.objects.create(user=staff, team=team, role=Role.OWNER)
    client.force_login(staff)

    # Team roles decide, not model permissions: even an owner joins people only by invitation.
    assert client.get(reverse("admin:videos_membership_add")).status_code == 403
    assert client.get(team_url(team)).status_code == 403
    assert client.get(reverse("admin:videos_team_changelist")).status_code == 403
