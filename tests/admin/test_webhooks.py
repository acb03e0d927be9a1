"""Webhooks in the admin: owners of the team only, secrets never shown, test events and
re-sends through the same services."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin.conftest import staff
from videos.models import Role, WebhookDelivery
from videos.webhooks.endpoints import webhook_create

pytestmark = pytest.mark.django_db


def test_owners_look_after_endpoints_and_nobody_sees_a_secret(
    client, project, other_project, receiver
):
    olga = staff("olga", project.team, Role.OWNER)
    erin = staff("erin", project.team, Role.EDITOR)
    endpoint, secret = webhook_create(
        project=project, url=receiver.url, events=["job.failed"], by=None
    )
    theirs, _ = webhook_create(
        project=other_project, url=receiver.url, events=["job.failed"], by=None
    )

    client.force_login(erin)  # an editor here (an owner only of a team of her own)
    assert (
        receiver.url
        not in client.get(reverse("admin:videos_webhookendpoint_changelist")).content.decode()
    )
    change = reverse("admin:videos_webhookendpoint_change", args=[endpoint.pk])
    assert client.get(change).status_code == 302  # "doesn't exist", as for another team

    client.force_login(olga)
    listing = client.get(reverse("admin:videos_webhookendpoint_changelist")).content.decode()
    assert receiver.url in listing
    assert reverse("admin:videos_webhookendpoint_change", args=[theirs.pk]) not in listing
    page = client.get(reverse("admin:videos_webhookendpoint_change", args=[endpoint.pk]))
    assert secret not in page.content.decode() and endpoint.secret_hint in page.content.decode()

    client.post(
        reverse("admin:videos_webhookendpoint_changelist"),
        {"action": "send_test_event", "_selected_action": [endpoint.pk]},
    )
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "webhook.test"
    client.post(
        reverse("admin:videos_webhookdelivery_changelist"),
        {"action": "send_again", "_selected_action": [delivery.pk]},
    )
    assert WebhookDelivery.objects.count() == 2
