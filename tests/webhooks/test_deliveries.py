"""Outbound webhooks as a receiver sees them: signed (verified with the `standardwebhooks`
package and the endpoint's secret), retried against a failing receiver, disabled after a day of
failures, sent with two signatures while a secret rotates, and never sent for a change that
rolled back."""

from __future__ import annotations

import datetime
import json
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from django.core import mail
from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from tests.api.conftest import CLIP_BYTES, make_succeeded_job
from tests.fixtures.data import make_job, make_member
from videos import jobs
from videos.jobs.states import Party, transition
from videos.models import (
    DeliveryStatus,
    GenerationJob,
    JobState,
    Role,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
)
from videos.webhooks import delivery as sending
from videos.webhooks.endpoints import webhook_create, webhook_rotate_secret

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def endpoint(project, receiver):
    endpoint, secret = webhook_create(
        project=project,
        url=receiver.url,
        events=[WebhookEvent.JOB_SUCCEEDED, WebhookEvent.JOB_FAILED],
        by=None,
    )
    endpoint.plain_secret = secret
    return endpoint


def retrieving_job(project) -> GenerationJob:
    """A job whose clip is stored, one step from `succeeded`."""
    job = make_succeeded_job(project)
    GenerationJob.objects.filter(pk=job.pk).update(state=JobState.RETRIEVING)
    job.refresh_from_db()
    return job


def test_a_succeeded_job_is_delivered_signed_with_the_job_and_a_clip_link(
    project, endpoint, receiver, live_server, settings
):
    settings.PUBLIC_BASE_URL = live_server.url
    job = retrieving_job(project)
    assert transition(job, to=JobState.SUCCEEDED, party=Party.WORKER, reason="Stored.")

    [received] = receiver.requests
    event = Webhook(endpoint.plain_secret).verify(received.body, received.headers)
    assert event["type"] == "job.succeeded"
    assert event["data"]["job"]["id"] == str(job.pk)
    assert event["data"]["job"]["state"] == "succeeded"
    assert event["data"]["job"]["cost_usd"] == "0.2800"
    # The clip link works without a token, for an hour.
    expires = datetime.datetime.fromisoformat(event["data"]["clip_url_expires_at"])
    assert expires - timezone.now() > datetime.timedelta(minutes=59)
    assert requests.get(event["data"]["clip_url"], timeout=5).content == CLIP_BYTES
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_http_status) == ("delivered", 1, 200)
    assert received.headers["webhook-id"] == delivery.message_id
    with pytest.raises(WebhookVerificationError):  # another secret does not verify it
        Webhook("whsec_" + "A" * 43 + "=").verify(received.body, received.headers)


def readme_receiver() -> str:
    """The receiver the README shows (the code block after "A receiver checks a delivery")."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    after = readme.split("A receiver checks a delivery", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_receiver_takes_a_real_delivery_and_refuses_a_changed_one(
    project, endpoint, receiver
):
    published: list[tuple[str, str]] = []
    scope = {
        "SECRET": endpoint.plain_secret,
        "publish": lambda job_id, clip_url: published.append((job_id, clip_url)),
        "HttpResponse": HttpResponse,
    }
    exec(readme_receiver(), scope)
    job = retrieving_job(project)
    transition(job, to=JobState.SUCCEEDED, party=Party.WORKER, reason="Stored.")
    [received] = receiver.requests

    def sent(body: bytes) -> int:
        request = SimpleNamespace(body=body, headers=received.headers)
        return scope["reelforge_hook"](request).status_code

    assert sent(received.body) == 204
    [(job_id, clip_url)] = published
    assert job_id == str(job.pk) and clip_url.startswith("http")
    assert sent(received.body.replace(b"succeeded", b"failed")) == 400
    assert len(published) == 1


def test_events_the_endpoint_did_not_ask_for_are_not_sent(project, endpoint, receiver):
    job = make_job(project, state=JobState.RETRIEVING)
    assert transition(job, to=JobState.NEEDS_ATTENTION, party=Party.WORKER, reason="Disk full.")
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()


def test_a_change_that_rolls_back_sends_nothing(project, endpoint, receiver):
    job = make_job(project, state=JobState.GENERATING)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
        raise RuntimeError("the rest of the change failed")
    job.refresh_from_db()
    assert job.state == JobState.GENERATING
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()


def test_a_failing_receiver_is_tried_again_with_back_off_until_it_answers(
    project, endpoint, receiver
):
    receiver.status, receiver.answer = 503, b"busy " * 500
    job = make_job(project, state=JobState.GENERATING)
    before = timezone.now()
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_http_status) == ("pending", 1, 503)
    first_back_off = datetime.timedelta(seconds=5)  # after the failed try
    assert before + first_back_off <= delivery.next_attempt_at <= timezone.now() + first_back_off
    [attempt] = delivery.tries.all()
    assert attempt.status == 503 and len(attempt.response_body) == 1000
    assert delivery.endpoint.failing_since is not None

    assert sending.delivery_send(delivery.pk) == "not due"  # not before its time
    for expected_wait in (30, 120):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert sending.delivery_send(delivery.pk) == "will retry"
        delivery.refresh_from_db()
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        assert expected_wait - 3 < wait <= expected_wait

    receiver.status = 204
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert sending.delivery_send(delivery.pk) == "delivered"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 4)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.message_id] * 4
    delivery.endpoint.refresh_from_db()
    assert delivery.endpoint.failing_since is None


def _as_if_seconds_passed(delivery: WebhookDelivery, seconds: int) -> None:
    """Move the delivery's history and its endpoint's failure streak `seconds` into the past,
    and make its next try due now."""
    back = datetime.timedelta(seconds=seconds)
    for attempt in WebhookAttempt.objects.filter(delivery=delivery):
        WebhookAttempt.objects.filter(pk=attempt.pk).update(created=attempt.created - back)
    endpoint = type(delivery.endpoint).objects.get(pk=delivery.endpoint_id)
    assert endpoint.failing_since is not None
    type(endpoint).objects.filter(pk=endpoint.pk).update(
        failing_since=endpoint.failing_since - back
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_an_endpoint_failing_for_a_day_is_disabled_and_its_owners_told(project, endpoint, receiver):
    owner = make_member("olga", project.team, Role.OWNER)
    owner.email = "olga@example.com"
    owner.save()
    receiver.status = 500
    job = make_job(project, state=JobState.GENERATING)
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    delivery = WebhookDelivery.objects.get()
    # Every try but the last fails without disabling anything: a day has not gone by.
    for wait in sending.BACK_OFF[:-1]:
        _as_if_seconds_passed(delivery, wait)
        assert sending.delivery_send(delivery.pk) == "will retry"
    endpoint.refresh_from_db()
    assert endpoint.enabled and not mail.outbox
    # The last try, 25.7 hours after the first, fails too: the endpoint is disabled.
    _as_if_seconds_passed(delivery, sending.BACK_OFF[-1])
    assert sending.delivery_send(delivery.pk) == "failed; endpoint disabled"
    endpoint.refresh_from_db()
    assert endpoint.enabled is False and "every delivery since" in endpoint.disabled_reason
    assert len(receiver.requests) == len(sending.BACK_OFF) + 1
    [message] = mail.outbox
    assert message.to == ["olga@example.com"] and "was disabled" in message.subject
    # Nothing more goes to a disabled endpoint.
    job2 = make_job(project, state=JobState.GENERATING)
    transition(job2, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    assert len(receiver.requests) == len(sending.BACK_OFF) + 1


def test_failures_long_past_do_not_disable_an_endpoint_at_its_next_event(
    project, endpoint, receiver
):
    # Its last event failed every try three days ago, and nothing was sent to it since.
    type(endpoint).objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - datetime.timedelta(days=3)
    )
    receiver.status = 500
    job = make_job(project, state=JobState.GENERATING)
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)  # tried again later
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(project, endpoint, receiver):
    old = endpoint.plain_secret
    new = webhook_rotate_secret(endpoint)
    job = make_job(project, state=JobState.GENERATING)
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    [received] = receiver.requests
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(received.body, received.headers)
    Webhook(new).verify(received.body, received.headers)

    type(endpoint).objects.filter(pk=endpoint.pk).update(
        previous_secret_expires=timezone.now() - datetime.timedelta(seconds=1)
    )
    job2 = make_job(project, state=JobState.GENERATING)
    transition(job2, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    later = receiver.requests[1]
    Webhook(new).verify(later.body, later.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(later.body, later.headers)


def test_a_delivery_can_be_sent_again_and_a_test_event_sent(project, endpoint, receiver):
    job = make_job(project, state=JobState.GENERATING)
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    first = WebhookDelivery.objects.get()
    again = sending.delivery_resend(first)
    assert again.pk != first.pk and again.message_id == first.message_id
    # The same message to the receiver, which can tell it has it already.
    first_sent, resent = receiver.requests
    assert resent.headers["webhook-id"] == first_sent.headers["webhook-id"] == first.message_id
    assert json.loads(resent.body) == json.loads(first_sent.body)
    test = sending.send_test(endpoint)
    assert [json.loads(r.body)["type"] for r in receiver.requests] == [
        "job.failed",
        "job.failed",
        "webhook.test",
    ]
    test.refresh_from_db()
    assert test.status == DeliveryStatus.DELIVERED


def test_a_delivery_whose_hand_over_was_lost_is_sent_once_its_claim_runs_out(
    project, endpoint, receiver, settings
):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    with transaction.atomic():
        job = make_job(project, state=JobState.GENERATING)
        transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
        # As if the worker died between commit and enqueue: the task is never run.
        transaction.get_connection().run_on_commit = []
    assert receiver.requests == []
    assert jobs.tick().webhooks == 0  # still claimed for the hand-over that was lost
    later = timezone.now() + datetime.timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 3 + 31)
    assert jobs.sweep(now=later)["webhooks"] == 1
    assert len(receiver.requests) == 1


def test_the_job_clock_hands_a_failed_delivery_over_at_its_next_try(project, endpoint, receiver):
    receiver.status = 503
    job = make_job(project, state=JobState.GENERATING)
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert jobs.tick().webhooks == 0  # its back-off has not passed

    receiver.status = 204
    assert jobs.tick(now=delivery.next_attempt_at).webhooks == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert jobs.tick(now=delivery.created + datetime.timedelta(days=2)).webhooks == 0


def test_budget_alerts_email_owners_and_fire_events_once_per_threshold(project, receiver):
    from billing.models import Budget
    from billing.services import budget_reserve
    from videos import tasks
    from videos.webhooks.endpoints import webhook_create

    owner = make_member("olga", project.team, Role.OWNER)
    owner.email = "olga@example.com"
    owner.save()
    make_member("erin", project.team, Role.EDITOR)  # editors are not emailed
    Budget.objects.filter(project=project).update(
        monthly_cap_usd=Decimal("1.00"), warning_threshold=Decimal("0.50")
    )
    _, secret = webhook_create(
        project=project,
        url=receiver.url,
        events=[WebhookEvent.BUDGET_WARNING, WebhookEvent.BUDGET_EXHAUSTED],
        by=None,
    )

    def reserve(usd: str) -> None:
        budget_reserve(job=make_job(project, estimated_cost_usd=Decimal(usd)))
        tasks.sweep()

    reserve("0.28")
    assert mail.outbox == []  # 28%: under the warning
    reserve("0.28")  # 56%: over it
    reserve("0.28")  # 84%: still over it, told already
    [warning] = mail.outbox
    assert warning.to == ["olga@example.com"]
    assert "used $0.56 of its $1.00 budget" in warning.subject
    reserve("0.16")  # $1.00 of $1.00: the cap
    assert len(mail.outbox) == 2 and "has used its $1.00 budget" in mail.outbox[1].subject
    reserve("0.05")  # refused: nothing more to tell
    assert len(mail.outbox) == 2
    events = [Webhook(secret).verify(r.body, r.headers) for r in receiver.requests]
    assert [event["type"] for event in events] == ["budget.warning", "budget.exhausted"]
    assert events[0]["data"] == {
        "project": project.pk,
        "month": timezone.now().strftime("%Y-%m"),
        "spent_and_reserved_usd": "0.56",
        "cap_usd": "1.00",
    }


def test_an_unreachable_receiver_is_an_attempt_with_its_error_and_a_retry(project, settings):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint, _ = webhook_create(
        project=project,
        url=f"http://127.0.0.1:{port}/hooks",
        events=[WebhookEvent.JOB_FAILED],
        by=None,
    )
    job = make_job(project, state=JobState.GENERATING)
    assert transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_http_status) == ("pending", 1, None)
    [attempt] = delivery.tries.all()
    assert attempt.status is None and attempt.error == "ConnectionError"
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.enabled


def test_ended_deliveries_are_pruned_after_the_history_period(
    project, endpoint, receiver, settings
):
    from videos import tasks

    receiver.status = 503
    for _ in range(2):
        job = make_job(project, state=JobState.GENERATING)
        transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    pending, ended = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk=ended.pk).update(status=DeliveryStatus.DELIVERED)
    long_ago = timezone.now() - datetime.timedelta(days=settings.WEBHOOK_HISTORY_DAYS + 1)
    WebhookDelivery.objects.update(created=long_ago)

    assert tasks.sweep()["webhooks_pruned"] == 1
    # Its attempts went with it; one still being tried is kept whatever its age.
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [pending.pk]
    assert WebhookAttempt.objects.filter(delivery_id=ended.pk).count() == 0
    assert WebhookAttempt.objects.filter(delivery_id=pending.pk).count() == 1


def test_a_pause_is_told_to_the_projects_on_that_provider_only(project, other_project, receiver):
    from videos.jobs import gate
    from videos.models import Project

    Project.objects.filter(pk=other_project.pk).update(provider="kling")
    for each in (project, other_project):
        webhook_create(
            project=each, url=receiver.url, events=[WebhookEvent.SUBMISSIONS_PAUSED], by=None
        )
    gate.pause("kie", code="402", reason="No credits left")
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.endpoint.project_id == project.pk
    [received] = receiver.requests
    assert json.loads(received.body)["data"] == {
        "provider": "kie",
        "code": "402",
        "reason": "No credits left",
    }


def test_a_receiver_that_trickles_its_answer_does_not_hold_the_worker(
    project, endpoint, receiver, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    receiver.answer, receiver.trickle = b"x" * 30, 1  # a byte a second, for 30 s
    started = time.monotonic()
    job = make_job(project, state=JobState.GENERATING)
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    assert time.monotonic() - started < 10  # not the 30 s the receiver would take
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_http_status) == ("delivered", 200)
    [attempt] = delivery.tries.all()
    assert 1 <= len(attempt.response_body) <= 3 and attempt.error == ""


def test_what_came_of_an_answer_before_a_read_timed_out_is_kept(
    project, endpoint, receiver, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.answer, receiver.trickle = b"xy", 3  # the second byte comes after the timeout
    job = make_job(project, state=JobState.GENERATING)
    transition(job, to=JobState.FAILED, party=Party.PROVIDER, reason="Refused.")
    [attempt] = WebhookDelivery.objects.get().tries.all()
    assert (attempt.status, attempt.response_body, attempt.error) == (200, "x", "")
