"""Webhook endpoints through the API: owners only, the secret shown once."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from tests.api.conftest import errors
from videos.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

WEBHOOKS = "/api/v1/webhooks/"


def create(client, project, url="https://images.example.com/reelforge-hooks", **fields):
    body = {"project": project.pk, "url": url, "events": ["job.succeeded"], **fields}
    return client.post(WEBHOOKS, body, format="json")


def test_an_owner_makes_an_endpoint_and_sees_its_secret_once(
    alice_api, project, settings, public_resolver
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = create(alice_api, project)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["secret"].startswith("whsec_") and Webhook(data["secret"])
    assert data["secret_hint"] == data["secret"][:10] + "..."
    shown = alice_api.get(f"{WEBHOOKS}{data['id']}/").json()
    assert "secret" not in shown and shown["events"] == ["job.succeeded"]
    listed = alice_api.get(WEBHOOKS).content.decode()
    assert data["secret"] not in listed


def test_bad_endpoints_are_refused_with_field_messages(
    alice_api, project, settings, public_resolver
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    assert errors(create(alice_api, project, url="http://127.0.0.1:9/hook")) == {
        "url": [
            "The webhook URL must point to a public address; it resolves to a private, "
            "loopback, link-local or reserved one."
        ]
    }
    response = create(alice_api, project, events=["job.exploded"])
    assert list(errors(response)) == ["events.0"]
    assert not WebhookEndpoint.objects.exists()


def test_only_owners_manage_endpoints(alice_api, erin_api, bob_api, project):
    assert create(erin_api, project).status_code == 403
    assert errors(create(bob_api, project)) == {
        "project": ["No project with this id in your teams."]
    }
    made = create(alice_api, project).json()
    url = f"{WEBHOOKS}{made['id']}/"
    assert erin_api.get(url).status_code == 403
    assert erin_api.get(WEBHOOKS).json()["results"] == []
    assert bob_api.get(url).status_code == 404
    assert bob_api.post(f"{url}rotate-secret/").status_code == 404


def test_an_endpoint_is_changed_rotated_and_deleted(alice_api, project):
    made = create(alice_api, project).json()
    url = f"{WEBHOOKS}{made['id']}/"
    changed = alice_api.patch(
        url, {"events": ["job.failed", "budget.warning"], "enabled": False}, format="json"
    ).json()
    assert changed["events"] == ["budget.warning", "job.failed"] and changed["enabled"] is False
    rotated = alice_api.post(f"{url}rotate-secret/").json()
    assert rotated["secret"] != made["secret"] and rotated["previous_secret_expires"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.previous_secret == made["secret"]
    assert alice_api.delete(url).status_code == 204
    assert not WebhookEndpoint.objects.exists()
