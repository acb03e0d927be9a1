"""A project's webhook endpoints: made, changed, their secret rotated, deleted (owners only;
the doors check the role)."""

from __future__ import annotations

import base64
import datetime
import secrets
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from videos.image_urls import public_addresses, public_url_problem
from videos.models import Project, WebhookEndpoint, WebhookEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# After a rotation the old secret signs beside the new one this long, for receivers to switch.
ROTATION_OVERLAP = datetime.timedelta(hours=24)
SUBSCRIBABLE = [event for event in WebhookEvent.values if event != WebhookEvent.TEST]


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def url_problem(url: str) -> str | None:
    """Why deliveries may not go to `url` (the image URLs' rule: public http(s) addresses),
    or None. WEBHOOKS_ALLOW_PRIVATE_URLS lifts the address rule for development and tests."""
    if settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        return None if url.startswith(("http://", "https://")) else "Enter an http(s) URL."
    return public_url_problem(url, name="The webhook URL")


def delivery_addresses(url: str) -> list[str] | None:
    """The vetted addresses to deliver to, checked again at each delivery (a name may point
    elsewhere than it did); None with WEBHOOKS_ALLOW_PRIVATE_URLS: connect by name. Raises
    `image_urls.NotPublic` when the URL may not be used."""
    if settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        return None
    return public_addresses(url, name="The webhook URL")


def _check(url: str | None, events: list[str] | None) -> None:
    errors: dict[str, str] = {}
    if url is not None and (problem := url_problem(url)):
        errors["url"] = problem
    if events is not None:
        unknown = sorted(set(events) - set(SUBSCRIBABLE))
        if unknown:
            errors["events"] = f"Unknown events: {', '.join(unknown)}. Choose from: " + ", ".join(
                SUBSCRIBABLE
            )
        elif not events:
            errors["events"] = "Choose at least one event."
    if errors:
        raise ValidationError(errors)


def webhook_create(
    *, project: Project, url: str, events: list[str], by: User | None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint, and its signing secret: shown this once, never again."""
    _check(url, events)
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        project=project, url=url, events=sorted(set(events)), secret=secret, created_by=by
    )
    return endpoint, secret


def webhook_update(endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change `url`, `events` or `enabled`; enabling again forgets past failures."""
    _check(changes.get("url"), changes.get("events"))
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    if changes.get("enabled") and not endpoint.enabled:
        changes.update(failing_since=None, disabled_reason="")
    for field, value in changes.items():
        setattr(endpoint, field, value)
    endpoint.save()
    return endpoint


def webhook_rotate_secret(
    endpoint: WebhookEndpoint, *, now: datetime.datetime | None = None
) -> str:
    """A new signing secret (returned, shown once); the old one signs beside it for a day."""
    secret = new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires = (now or timezone.now()) + ROTATION_OVERLAP
    endpoint.secret = secret
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires"])
    return secret


def webhook_delete(endpoint: WebhookEndpoint) -> None:
    endpoint.delete()
