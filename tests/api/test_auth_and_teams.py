"""Tokens, authentication, and owners managing their team's members."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from videos.models import Membership, Role, Team

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"


def test_a_username_and_password_get_the_users_token(alice):
    client = APIClient()
    first = client.post(TOKEN, {"username": "alice", "password": "alice-pw-1"}, format="json")
    again = client.post(TOKEN, {"username": "alice", "password": "alice-pw-1"}, format="json")

    assert first.status_code == 200
    assert first.json() == again.json() == {"token": Token.objects.get(user=alice).key}

    client.credentials(HTTP_AUTHORIZATION=f"Token {first.json()['token']}")
    assert client.get("/api/v1/projects/").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": "x"},
        {"username": "alice"},
        {"username": "a\x00", "password": "x"},
    ],
)
def test_wrong_credentials_get_no_token(alice, body):
    response = APIClient().post(TOKEN, body, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()


def test_an_inactive_user_gets_no_token(alice):
    alice.is_active = False
    alice.save()
    response = APIClient().post(
        TOKEN, {"username": "alice", "password": "alice-pw-1"}, format="json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "header", [None, "Token nonsense", "Bearer abc", "Token", "Bearer rf_revoked", "Bearer a b"]
)
def test_requests_without_valid_credentials_are_401(db, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_session_login_works_for_the_browsable_api(client, alice):
    client.force_login(alice)
    response = client.get("/api/v1/projects/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content.lower()


def test_teams_list_the_users_role_and_their_own_team(alice_api, vic_api, team, other_team):
    teams = alice_api.get("/api/v1/teams/").json()["results"]
    assert [(t["name"], t["role"], t["personal"]) for t in teams] == [
        ("Alpha", "owner", False),
        ("alice's team", "owner", True),
    ]
    assert vic_api.get("/api/v1/teams/").json()["results"][0]["role"] == "viewer"


def members_url(team: Team) -> str:
    return f"/api/v1/teams/{team.pk}/members/"


def test_members_see_the_member_list(vic_api, alice, vic, team):
    members = vic_api.get(members_url(team)).json()["results"]
    assert sorted((m["username"], m["role"]) for m in members) == [
        ("alice", "owner"),
        ("vic", "viewer"),
    ]


def test_an_owner_changes_and_removes_a_member(alice_api, team, erin):
    changed = alice_api.patch(f"{members_url(team)}{erin.pk}/", {"role": "viewer"})
    assert changed.json()["role"] == "viewer"
    assert alice_api.delete(f"{members_url(team)}{erin.pk}/").status_code == 204
    assert not Membership.objects.filter(user=erin, team=team).exists()


def test_nobody_is_added_to_a_team_without_an_invitation(alice_api, team, django_user_model):
    django_user_model.objects.create_user(username="dana", password="dana-pw-1")
    response = alice_api.post(members_url(team), {"username": "dana", "role": "viewer"})
    assert response.status_code == 405
    assert not Membership.objects.filter(user__username="dana").exists()


def test_the_last_owner_cannot_leave_or_be_demoted(alice_api, alice, team, erin):
    url = f"{members_url(team)}{alice.pk}/"
    assert alice_api.patch(url, {"role": "editor"}).status_code == 409
    assert alice_api.delete(url).status_code == 409

    alice_api.patch(f"{members_url(team)}{erin.pk}/", {"role": "owner"})
    assert alice_api.patch(url, {"role": "editor"}).status_code == 200


def test_only_owners_manage_members(erin_api, vic_api, team, vic):
    for api in (erin_api, vic_api):
        assert api.patch(f"{members_url(team)}{vic.pk}/", {"role": "editor"}).status_code == 403
        assert api.delete(f"{members_url(team)}{vic.pk}/").status_code == 403
    assert Membership.objects.get(user=vic, team=team).role == Role.VIEWER


def test_another_teams_members_are_not_found(alice_api, bob, other_team):
    assert alice_api.get(members_url(other_team)).status_code == 404
    assert alice_api.delete(f"{members_url(other_team)}{bob.pk}/").status_code == 404
    assert Membership.objects.filter(team=other_team).count() == 1
