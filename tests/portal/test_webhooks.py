"""Webhooks in the portal: owners only; the secret shown once; test events and re-sends."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Budget, EntryKind, LedgerEntry
from videos.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_an_owner_adds_an_endpoint_and_sees_the_secret_once(signed_in, world, receiver):
    client = signed_in(world.olga)
    url = reverse("portal:webhooks", args=[world.alpha.project.pk])
    response = client.post(url, {"url": receiver.url, "events": ["job.succeeded", "job.failed"]})
    endpoint = WebhookEndpoint.objects.get()
    assert response["Cache-Control"] == "no-store"
    assert endpoint.secret in response.content.decode()
    page = client.get(url).content.decode()
    assert endpoint.secret not in page and endpoint.secret_hint in page
    assert "job.failed, job.succeeded" in page


def test_test_events_rotation_disabling_and_resending(signed_in, world, receiver):
    client = signed_in(world.olga)
    url = reverse("portal:webhooks", args=[world.alpha.project.pk])
    client.post(url, {"url": receiver.url, "events": ["job.succeeded"]})
    endpoint = WebhookEndpoint.objects.get()

    def act(action: str, **data: object):
        return client.post(
            reverse("portal:webhook-action", args=[world.alpha.project.pk, endpoint.pk, action]),
            data,
        )

    act("test")
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "webhook.test"
    act("resend", delivery=delivery.pk)
    assert WebhookDelivery.objects.count() == 2
    rotated = act("rotate").content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret in rotated and endpoint.previous_secret
    act("disable")
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    act("delete")
    assert not WebhookEndpoint.objects.exists()


def test_bad_urls_get_form_errors(signed_in, world, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    url = reverse("portal:webhooks", args=[world.alpha.project.pk])
    response = signed_in(world.olga).post(
        url, {"url": "http://10.0.0.7/hook", "events": ["job.failed"]}
    )
    assert response.status_code == 400
    assert "The webhook URL must point to a public address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("who", ["erin", "vic"])
def test_only_owners_reach_webhooks(signed_in, world, who):
    url = reverse("portal:webhooks", args=[world.alpha.project.pk])
    assert signed_in(getattr(world, who)).get(url).status_code == 403
    assert signed_in(world.bob).get(url).status_code == 404
    assert (
        "Manage webhooks"
        not in signed_in(getattr(world, who))
        .get(reverse("portal:project", args=[world.alpha.project.pk]))
        .content.decode()
    )


def test_pages_warn_when_the_budget_runs_low_or_out(signed_in, world):
    project = world.alpha.project
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.60"))
    html = signed_in(world.vic).get("/").content.decode()
    assert "Over 80% of this month's budget: $0.05 left." in html
    LedgerEntry.objects.create(
        project=project, kind=EntryKind.ADJUSTMENT, amount=Decimal("0.05"), note="fee"
    )
    page = signed_in(world.vic).get(reverse("portal:project", args=[project.pk])).content.decode()
    assert "The budget for this month is used up" in page
