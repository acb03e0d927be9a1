"""Sending a delivery: the body built now (a job as the API shows it, with a clip link good for
`CLIP_LINK_SECONDS`), signed with the endpoint's secret (and the previous one, during a
rotation), posted with a short timeout; every try recorded. A failed try is tried again with
exponential back-off for a little more than a day; an endpoint is disabled, and its owners
told, when a delivery has failed every try for a day with nothing delivered to it meanwhile."""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import Any

import requests
import urllib3
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from videos import outbound, selectors
from videos.batches import batch_progress
from videos.clip_links import clip_link
from videos.image_urls import NotPublic
from videos.models import (
    Batch,
    DeliveryStatus,
    GenerationJob,
    Membership,
    Role,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from videos.webhooks.endpoints import delivery_addresses
from videos.webhooks.events import deliveries_add, event_record, hold_end

logger = logging.getLogger(__name__)

# Seconds to wait before each next try, then the delivery is given up: 25.7 hours in all, so
# that the last try of a delivery comes after DISABLE_AFTER.
BACK_OFF = [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 36000]
DISABLE_AFTER = datetime.timedelta(days=1)
RESPONSE_KEPT = 1000


def absolute(path: str) -> str:
    return path if "://" in path else f"{settings.PUBLIC_BASE_URL}{path}"


def _job_data(job_id: str) -> dict[str, Any] | None:
    from videos.api.serializers import JobSummarySerializer

    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None:
        return None
    [job] = selectors.jobs_with_details([job])
    data: dict[str, Any] = {"job": JobSummarySerializer(job).data}
    if getattr(job, "asset", None) is not None:  # read with the job: no query when absent
        url, expires_at = clip_link(job)
        data["clip_url"], data["clip_url_expires_at"] = absolute(url), expires_at.isoformat()
        asset = data["job"]["asset"]
        asset["url"], asset["poster_url"] = (
            absolute(asset["url"]),
            (absolute(asset["poster_url"]) if asset["poster_url"] else None),
        )
    return data


def _batch_data(batch_id: int) -> dict[str, Any] | None:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        return None
    progress = batch_progress(batch)
    return {
        "batch": {
            "id": batch.pk,
            "project": batch.project_id,
            "rows": progress.rows,
            "by_state": progress.by_state,
            "spent_usd": str(progress.spent_usd),
            "completed_at": batch.completed_at.isoformat() if batch.completed_at else None,
        }
    }


def body_of(delivery: WebhookDelivery) -> str:
    """The JSON sent: the event as recorded, its data filled in as things stand now."""
    payload = dict(delivery.payload)
    data = dict(payload.get("data", {}))
    if "job_id" in data:
        data = _job_data(data["job_id"]) or data
    elif "batch_id" in data:
        data = _batch_data(data["batch_id"]) or data
    payload["data"] = data
    return json.dumps(payload, separators=(",", ":"), default=str)


def signature(
    endpoint: WebhookEndpoint, message_id: str, moment: datetime.datetime, body: str
) -> str:
    """`webhook-signature`: by the secret, and by the previous one while it is still valid."""
    secrets = [endpoint.secret]
    if endpoint.previous_secret and (
        endpoint.previous_secret_expires and endpoint.previous_secret_expires > moment
    ):
        secrets.append(endpoint.previous_secret)
    return " ".join(Webhook(secret).sign(message_id, moment, body) for secret in secrets)


def _claim(delivery_id: int, held_until: datetime.datetime | None) -> WebhookDelivery | None:
    """The delivery, if it is this worker's to send: handed over with `held_until` (its claim,
    made when it was handed over), or else due now and claimed here."""
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
    if held_until is not None:
        rows = rows.filter(next_attempt_at=held_until)
    else:
        rows = rows.filter(next_attempt_at__lte=now)
    if not rows.update(next_attempt_at=hold_end(now)):
        return None
    return WebhookDelivery.objects.select_related("endpoint__project").get(pk=delivery_id)


def delivery_send(delivery_id: int, held_until: datetime.datetime | None = None) -> str:
    """Try the delivery once, if it is due (or handed over with `held_until`); returns what
    became of it. A failed try's next one is handed over by the job clock at its time."""
    delivery = _claim(delivery_id, held_until)
    if delivery is None:
        return "not due"
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
        return "endpoint disabled"
    body = body_of(delivery)
    moment = timezone.now()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Reelforge-Webhooks/1",
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature(endpoint, delivery.message_id, moment, body),
    }
    status, answer, error = None, "", ""
    started = time.monotonic()
    try:
        addresses = delivery_addresses(endpoint.url)
    except NotPublic as exc:
        error = str(exc)
    else:
        try:
            response = outbound.request(
                "POST",
                endpoint.url,
                addresses=addresses,
                headers_within=settings.WEBHOOK_TIMEOUT_SECONDS,
                data=body.encode(),
                headers=headers,
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,
                stream=True,
            )
            status = response.status_code
            answer = _answer_start(response, until=started + settings.WEBHOOK_TIMEOUT_SECONDS)
            response.close()
        # ValueError: a URL that cannot be sent as given (http.client refuses it).
        except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as exc:
            error = type(exc).__name__
    elapsed = int((time.monotonic() - started) * 1000)
    return _record(delivery, status=status, answer=answer, error=error, elapsed_ms=elapsed)


def _answer_start(response: requests.Response, *, until: float) -> str:
    """The first RESPONSE_KEPT bytes of the answer, as much as came by `until`: each read returns
    what one packet brought, so a receiver that trickles its body cannot hold a worker."""
    kept = b""
    while len(kept) < RESPONSE_KEPT and time.monotonic() < until:
        try:
            packet = response.raw.read1(RESPONSE_KEPT - len(kept), decode_content=True)
        except urllib3.exceptions.HTTPError:  # a read timed out or the answer broke off
            break  # the status is in; what came of the body is still worth keeping
        if not packet:
            break
        kept += packet
    return kept.decode("utf-8", "replace")


def _record(
    delivery: WebhookDelivery, *, status: int | None, answer: str, error: str, elapsed_ms: int
) -> str:
    now = timezone.now()
    ok = status is not None and 200 <= status < 300
    attempts = delivery.attempts + 1
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            status=status,
            duration_ms=elapsed_ms,
            response_body=answer[:RESPONSE_KEPT],
            error=error,
        )
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        if ok:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.DELIVERED,
                attempts=attempts,
                last_http_status=status,
                delivered_at=now,
                next_attempt_at=None,
            )
            if endpoint.failing_since is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            return "delivered"
        gave_up = attempts > len(BACK_OFF)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED if gave_up else DeliveryStatus.PENDING,
            attempts=attempts,
            last_http_status=status,
            next_attempt_at=None
            if gave_up
            else now + datetime.timedelta(seconds=BACK_OFF[attempts - 1]),
        )
        failing_since = endpoint.failing_since or now
        if endpoint.failing_since is None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=now)
        if endpoint.enabled and gave_up and _failed_for_a_day(delivery, failing_since, now):
            _disable(endpoint, since=failing_since)
            return "failed; endpoint disabled"
    return "gave up" if gave_up else "will retry"


def _failed_for_a_day(
    delivery: WebhookDelivery, failing_since: datetime.datetime, now: datetime.datetime
) -> bool:
    """Whether the delivery failed every try for DISABLE_AFTER with nothing delivered to its
    endpoint since its first (a success clears `failing_since`). Judged by the delivery's own
    tries, so failures long past, with no traffic since, do not count against a new event."""
    first_try = (
        WebhookAttempt.objects.filter(delivery=delivery)
        .order_by("created")
        .values_list("created", flat=True)
        .first()
    )
    return first_try is not None and failing_since <= first_try and now - first_try >= DISABLE_AFTER


def _disable(endpoint: WebhookEndpoint, *, since: datetime.datetime) -> None:
    reason = (
        f"Disabled {timezone.now():%Y-%m-%d %H:%M} UTC: every delivery since "
        f"{since:%Y-%m-%d %H:%M} UTC failed."
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason)
    owners = list(
        Membership.objects.filter(team_id=endpoint.project.team_id, role=Role.OWNER)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    logger.warning("Webhook endpoint %s disabled after a day of failures", endpoint.pk)
    if owners:
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Reelforge: a webhook of {endpoint.project} was disabled",
                message=f"{reason}\n\nEndpoint: {endpoint.url}\nProject: {endpoint.project}\n"
                "Fix the receiver, then enable the endpoint again (portal, API or admin); "
                "deliveries can be sent again from its list.",
                from_email=None,
                recipient_list=owners,
                fail_silently=True,
            )
        )


def delivery_resend(delivery: WebhookDelivery) -> WebhookDelivery:
    """The same message again, sent at once: its `webhook-id` and event, as Standard Webhooks
    wants of a message sent again, in a new delivery with its own tries."""
    [again] = deliveries_add(
        [
            WebhookDelivery(
                endpoint=delivery.endpoint,
                message_id=delivery.message_id,
                event=delivery.event,
                payload=delivery.payload,
            )
        ]
    )
    return again


def send_test(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint alone."""
    from videos.models import WebhookEvent

    [delivery] = event_record(
        WebhookEvent.TEST,
        {"endpoint": endpoint.pk, "project": endpoint.project_id, "message": "It works."},
        endpoints=[endpoint],
    )
    return delivery
