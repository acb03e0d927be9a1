"""Personal API tokens: several per user, named, shown once, listed without their keys,
revoked; sent as Bearer or Token; the old login-token endpoint keeps working."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from videos.models import ApiToken

pytestmark = pytest.mark.django_db


def with_header(value: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=value)
    return client


def test_a_named_token_is_shown_once_and_works_as_bearer_or_token(alice_api):
    made = alice_api.post("/api/v1/tokens/", {"name": "nightly-render"}, format="json")
    assert made.status_code == 201
    key = made.json()["key"]
    assert key.startswith("rf_") and made.json()["prefix"] == key[:10]
    for scheme in ("Bearer", "Token", "bearer"):
        assert with_header(f"{scheme} {key}").get("/api/v1/projects/").status_code == 200
    listed = alice_api.get("/api/v1/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["nightly-render"]
    assert "key" not in listed[0] and key not in str(listed)
    assert listed[0]["last_used"] is not None
    assert key not in str(ApiToken.objects.values_list())  # only its hash is stored


def test_several_tokens_each_revoked_alone(alice_api):
    first = alice_api.post("/api/v1/tokens/", {"name": "a"}, format="json").json()
    second = alice_api.post("/api/v1/tokens/", {"name": "b"}, format="json").json()
    assert alice_api.delete(f"/api/v1/tokens/{first['id']}/").status_code == 204
    assert with_header(f"Bearer {first['key']}").get("/api/v1/projects/").status_code == 401
    assert with_header(f"Bearer {second['key']}").get("/api/v1/projects/").status_code == 200


def test_another_users_token_is_not_found(alice_api, bob_api):
    made = alice_api.post("/api/v1/tokens/", {"name": "mine"}, format="json").json()
    assert bob_api.delete(f"/api/v1/tokens/{made['id']}/").status_code == 404
    assert bob_api.get("/api/v1/tokens/").json()["results"] == []


def test_a_token_needs_a_name(alice_api):
    assert alice_api.post("/api/v1/tokens/", {"name": "  "}, format="json").status_code == 400


def test_the_login_token_endpoint_keeps_working_with_bearer(alice):
    token = (
        APIClient()
        .post("/api/v1/auth/token/", {"username": "alice", "password": "alice-pw-1"}, format="json")
        .json()["token"]
    )
    assert with_header(f"Bearer {token}").get("/api/v1/projects/").status_code == 200
