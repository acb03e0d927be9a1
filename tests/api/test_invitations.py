"""Team access needs consent: owners invite, invitees accept or decline, anyone but the last
owner can leave, and every user has their own team."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tests.api.conftest import client_for
from videos.models import Invitation, Membership, Project, Role

pytestmark = pytest.mark.django_db


def invite(api, team, **body):
    return api.post(f"/api/v1/teams/{team.pk}/invitations/", body, format="json")


@pytest.fixture
def dana(django_user_model):
    return django_user_model.objects.create_user(
        username="dana", email="dana@example.com", password="dana-pw-1"
    )


def test_an_invitee_accepts_and_joins_with_the_role_offered(alice_api, team, dana):
    answer = invite(alice_api, team, username="dana", role="editor")
    assert answer.status_code == 201
    assert not Membership.objects.filter(user=dana, team=team).exists()  # not before consent

    dana_api = client_for(dana)
    [offer] = dana_api.get("/api/v1/invitations/").json()["results"]
    assert (offer["team"], offer["role"], offer["invited_by"]) == (team.pk, "editor", "alice")

    joined = dana_api.post(f"/api/v1/invitations/{offer['id']}/accept/")
    assert joined.status_code == 200
    assert Membership.objects.get(user=dana, team=team).role == Role.EDITOR
    assert dana_api.get("/api/v1/invitations/").json()["results"] == []
    again = dana_api.post(f"/api/v1/invitations/{offer['id']}/accept/")
    assert (again.status_code, again.json()["code"]) == (409, "invitation_closed")


def test_an_invitation_by_email_reaches_the_user_with_that_email(alice_api, team, dana):
    assert invite(alice_api, team, email="DANA@example.com", role="viewer").status_code == 201
    [offer] = client_for(dana).get("/api/v1/invitations/").json()["results"]
    assert offer["role"] == "viewer"


def test_the_answer_is_the_same_whether_or_not_the_user_exists(alice_api, team, dana):
    real = invite(alice_api, team, username="dana", role="viewer")
    ghost = invite(alice_api, team, username="ghost", role="viewer")
    assert real.status_code == ghost.status_code == 201
    shape = {key for key in real.json() if key not in ("id", "username", "created", "expires_at")}
    assert {k: real.json()[k] for k in shape} == {k: ghost.json()[k] for k in shape}


def test_a_declined_invitation_adds_nobody(alice_api, team, dana):
    invite(alice_api, team, username="dana", role="owner")
    dana_api = client_for(dana)
    [offer] = dana_api.get("/api/v1/invitations/").json()["results"]
    declined = dana_api.post(f"/api/v1/invitations/{offer['id']}/decline/")
    assert declined.json()["status"] == "declined"
    assert not Membership.objects.filter(user=dana, team=team).exists()
    assert dana_api.post(f"/api/v1/invitations/{offer['id']}/accept/").status_code == 409


def test_an_invitation_expires_after_seven_days(alice_api, team, dana):
    invite(alice_api, team, username="dana", role="editor")
    Invitation.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    dana_api = client_for(dana)
    assert dana_api.get("/api/v1/invitations/").json()["results"] == []
    offer = Invitation.objects.get()
    answer = dana_api.post(f"/api/v1/invitations/{offer.pk}/accept/")
    assert answer.status_code == 409 and "expired" in answer.json()["detail"]
    assert not Membership.objects.filter(user=dana, team=team).exists()


def test_someone_elses_invitation_cannot_be_answered(alice_api, team, dana, bob):
    invite(alice_api, team, username="dana", role="owner")
    offer = Invitation.objects.get()
    assert client_for(bob).post(f"/api/v1/invitations/{offer.pk}/accept/").status_code == 404
    assert not Membership.objects.filter(user=bob, team=team).exists()


def test_only_owners_invite_and_see_or_revoke_invitations(erin_api, vic_api, alice_api, team, dana):
    for api in (erin_api, vic_api):
        assert invite(api, team, username="dana", role="owner").status_code == 403
        assert api.get(f"/api/v1/teams/{team.pk}/invitations/").status_code == 403
    invite(alice_api, team, username="dana", role="viewer")
    [pending] = alice_api.get(f"/api/v1/teams/{team.pk}/invitations/").json()["results"]
    revoked = alice_api.delete(f"/api/v1/teams/{team.pk}/invitations/{pending['id']}/")
    assert revoked.status_code == 204
    assert client_for(dana).get("/api/v1/invitations/").json()["results"] == []


def test_another_teams_invitations_are_not_found(alice_api, bob, other_team):
    assert invite(alice_api, other_team, username="alice", role="owner").status_code == 404
    assert alice_api.get(f"/api/v1/teams/{other_team.pk}/invitations/").status_code == 404


def test_an_invitation_names_a_username_or_an_email(alice_api, team):
    assert invite(alice_api, team, role="viewer").status_code == 400
    both = invite(alice_api, team, username="dana", email="dana@example.com", role="viewer")
    assert both.status_code == 400
    assert invite(alice_api, team, username="dana", role="admin").status_code == 400


def test_a_member_leaves_but_the_last_owner_cannot(alice_api, erin_api, alice, erin, team):
    assert erin_api.post(f"/api/v1/teams/{team.pk}/leave/").status_code == 204
    assert not Membership.objects.filter(user=erin, team=team).exists()
    refused = alice_api.post(f"/api/v1/teams/{team.pk}/leave/")
    assert (refused.status_code, refused.json()["code"]) == (409, "last_owner")


def test_nobody_leaves_their_own_team(alice_api, alice):
    personal = alice_api.get("/api/v1/teams/").json()["results"]
    own = next(t for t in personal if t["personal"])
    assert alice_api.post(f"/api/v1/teams/{own['id']}/leave/").status_code == 409


def test_a_new_users_first_project_lands_in_their_own_team_whatever_invitations_exist(
    alice_api, team, dana
):
    invite(alice_api, team, username="dana", role="editor")
    dana_api = client_for(dana)
    [offer] = dana_api.get("/api/v1/invitations/").json()["results"]
    dana_api.post(f"/api/v1/invitations/{offer['id']}/accept/")
    created = dana_api.post("/api/v1/projects/", {"name": "Mine"}, format="json")
    assert created.status_code == 201
    project = Project.objects.get(pk=created.json()["id"])
    assert project.team.personal_for == dana
    assert project.team != team


def test_signing_in_to_the_admin_gives_a_user_their_own_team(client, dana):
    dana.is_staff = True
    dana.save()
    assert client.login(username="dana", password="dana-pw-1")
    assert dana.personal_team.memberships.get().role == Role.OWNER


def test_a_username_differing_only_in_case_is_someone_else(
    alice_api, team, dana, django_user_model
):
    impostor = django_user_model.objects.create_user(username="DANA", password="x-pw-12345")
    invite(alice_api, team, username="dana", role="owner")
    offer = Invitation.objects.get()
    impostor_api = client_for(impostor)
    assert impostor_api.get("/api/v1/invitations/").json()["results"] == []
    assert impostor_api.post(f"/api/v1/invitations/{offer.pk}/accept/").status_code == 404
    assert not Membership.objects.filter(user=impostor, team=team).exists()


def test_an_email_two_accounts_share_reaches_neither(alice_api, team, dana, django_user_model):
    twin = django_user_model.objects.create_user(
        username="dana2", email="Dana@Example.com", password="x-pw-12345"
    )
    invite(alice_api, team, email="dana@example.com", role="owner")
    for user in (dana, twin):
        assert client_for(user).get("/api/v1/invitations/").json()["results"] == []
