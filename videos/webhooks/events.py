"""Events become deliveries: one a subscribed, enabled endpoint, saved in the transaction of
the change that causes them (so a change that rolls back sends nothing, and one that commits
is never lost), and handed to a worker once it commits; a retry, or a delivery whose worker
died, is handed over again by the job clock (`deliveries_dispatch`) when its time comes."""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from videos.handover import hand_over
from videos.models import (
    Batch,
    DeliveryStatus,
    JobState,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

JOB_EVENTS = {
    JobState.SUCCEEDED: WebhookEvent.JOB_SUCCEEDED,
    JobState.FAILED: WebhookEvent.JOB_FAILED,
    JobState.NEEDS_ATTENTION: WebhookEvent.JOB_NEEDS_ATTENTION,
}


def hold_end(now: datetime.datetime) -> datetime.datetime:
    """Until when a delivery handed to a worker is its own: past one send's timeout, so one whose
    worker died is handed over again (by the job clock) only after that."""
    return now + datetime.timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 3 + 30)


def enqueue_delivery(delivery_id: int, *, held_until: datetime.datetime) -> None:
    """Hand the delivery to a worker; it is claimed already, until `held_until`."""
    async_task(
        "videos.tasks.deliver_webhook",
        delivery_id,
        held_until.isoformat(),
        task_name=f"webhook-{delivery_id}",
    )


def event_record(
    event: str,
    data: Mapping[str, Any],
    *,
    project_id: int | None = None,
    provider: str | None = None,
    endpoints: list[WebhookEndpoint] | None = None,
) -> list[WebhookDelivery]:
    """Deliveries of `event` to the endpoints that take it: the project's, or those of every
    project on `provider` (a provider account's events). Call it inside the change's
    transaction."""
    if endpoints is None:
        found = WebhookEndpoint.objects.filter(enabled=True)
        if project_id is not None:
            found = found.filter(project_id=project_id)
        if provider is not None:
            found = found.filter(project__provider=provider)
        endpoints = [endpoint for endpoint in found if event in endpoint.events]
    if not endpoints:
        return []
    now = timezone.now()
    return deliveries_add(
        [
            WebhookDelivery(
                endpoint=endpoint,
                message_id=f"msg_{uuid.uuid4().hex}",
                event=event,
                payload={"type": event, "timestamp": now.isoformat(), "data": dict(data)},
            )
            for endpoint in endpoints
        ]
    )


def deliveries_add(deliveries: list[WebhookDelivery]) -> list[WebhookDelivery]:
    """Save the deliveries, each handed to a worker once the transaction commits. Each is
    claimed for that worker; if the hand-over is lost, the job clock hands it over again when
    the claim runs out."""
    held_until = hold_end(timezone.now())
    for delivery in deliveries:
        delivery.next_attempt_at = held_until
    saved = WebhookDelivery.objects.bulk_create(deliveries)
    for delivery in saved:
        transaction.on_commit(
            functools.partial(enqueue_delivery, delivery.pk, held_until=held_until)
        )
    return saved


def job_moved(*, job_id: Any, project_id: int, batch_id: int | None, to: str) -> None:
    """A job reached `to`: its event if it is one endpoints hear of, and its batch's when this
    was the batch's last job to end."""
    event = JOB_EVENTS.get(JobState(to))
    if event is None:
        return
    event_record(event, {"job_id": str(job_id)}, project_id=project_id)
    if batch_id is not None:
        _batch_check(batch_id)


def _batch_check(batch_id: int) -> None:
    from videos.batches import FINAL_STATES

    batch = Batch.objects.filter(pk=batch_id, completed_at__isnull=True).first()
    if batch is None:
        return
    open_rows = batch.jobs.filter(retries__isnull=True).exclude(state__in=FINAL_STATES)
    if open_rows.exists():
        return
    # Announced once: of two jobs ending at once, one sets `completed_at`.
    if Batch.objects.filter(pk=batch_id, completed_at__isnull=True).update(
        completed_at=timezone.now()
    ):
        event_record(
            WebhookEvent.BATCH_COMPLETED, {"batch_id": batch_id}, project_id=batch.project_id
        )


def submissions_paused(*, provider: str, code: str, reason: str) -> None:
    """Told to the endpoints of every project on that provider: their jobs are the ones held."""
    event_record(
        WebhookEvent.SUBMISSIONS_PAUSED,
        {"provider": provider, "code": code, "reason": reason},
        provider=provider,
    )


def deliveries_dispatch(*, now: datetime.datetime) -> int:
    """Hand to workers the deliveries whose next try has come (a retry's back-off has passed,
    or the worker that had one died), each claimed here once. Returns how many."""
    due = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).values_list("pk", "next_attempt_at")
    held_until = hold_end(now)
    return hand_over(
        WebhookDelivery,
        due[:500],
        field="next_attempt_at",
        to=held_until,
        enqueue=functools.partial(enqueue_delivery, held_until=held_until),
        status=DeliveryStatus.PENDING,
    )


def deliveries_prune(*, now: datetime.datetime, batch: int = 1000) -> int:
    """Delete up to `batch` deliveries (and their attempts) that ended more than
    WEBHOOK_HISTORY_DAYS ago: delivered, or given up. Pending ones are kept whatever their age.
    Returns how many."""
    cutoff = now - datetime.timedelta(days=settings.WEBHOOK_HISTORY_DAYS)
    old = WebhookDelivery.objects.filter(
        created__lt=cutoff, status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]
    ).order_by("created")
    ids = list(old.values_list("pk", flat=True)[:batch])
    if not ids:
        return 0
    WebhookDelivery.objects.filter(pk__in=ids).delete()
    return len(ids)
