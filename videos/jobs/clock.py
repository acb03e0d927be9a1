"""What wakes a job when its time comes: a free submission slot, its next poll, a retrieval's
retry, or a step whose worker died (a download, or a createTask whose answer was never saved).

`tick()` hands every step that has come due to a worker (a django-q2 task). Each worker process
runs it every CLOCK_SECONDS in a thread of its own (`clock_start`), and the sweep runs it once a
minute too; every hand-over is claimed by a conditional UPDATE, so any number of clocks on any
number of hosts hand each step over once. The only provider call is for its credit balance,
when the cached one is stale and jobs are about to go.
"""

from __future__ import annotations

import datetime
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections
from django.db.models import F, Q
from django.utils import timezone

from videos.handover import hand_over
from videos.jobs import gate
from videos.jobs.enqueue import (
    enqueue_credits_recheck,
    enqueue_poll,
    enqueue_recover_submission,
    enqueue_retrieve,
    enqueue_submit,
)
from videos.jobs.states import S
from videos.jobs.timing import conf
from videos.models import GenerationJob, ProviderAccount
from videos.providers import get_provider
from videos.webhooks.events import deliveries_dispatch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tick:
    submitted: int
    polled: int
    retrieving: int
    submissions_recovered: int = 0
    webhooks: int = 0
    credits_rechecks: int = 0  # balances of accounts paused for credits, handed to be read


def tick(*, now: datetime.datetime | None = None) -> Tick:
    """Hand to workers what has come due: queued jobs for the free slots, overdue polls,
    retrievals whose back-off or lease has run out, submissions whose worker stopped, and
    webhook deliveries due for their next try; and let submissions go again where credits
    came back. Returns how many of each."""
    now = now or timezone.now()
    room = backlog_room()
    if not room:
        return Tick(submitted=0, polled=0, retrieving=0)
    return Tick(
        submitted=submissions_dispatch(now=now, room=room),
        polled=jobs_poll_due(now=now),
        retrieving=retrievals_dispatch(now=now),
        submissions_recovered=stale_submissions_dispatch(now=now),
        webhooks=deliveries_dispatch(now=now),
        credits_rechecks=credits_rechecks_dispatch(now=now),
    )


def credits_rechecks_dispatch(*, now: datetime.datetime) -> int:
    """Hand to a worker a new reading of the balance of each account paused for lack of
    credits once its last reading is CREDITS_RECHECK_SECONDS old; the worker lets submissions
    go again when it pays for a clip (`submissions_resume_if_credits_returned`), so credits
    bought are used within seconds, not at the next sweep. Each reading is claimed, so one
    clock of all those running hands it over. Returns how many."""
    stale = now - datetime.timedelta(seconds=conf("CREDITS_RECHECK_SECONDS"))
    paused = ProviderAccount.objects.filter(
        Q(credits_checked_at__isnull=True) | Q(credits_checked_at__lte=stale),
        paused_at__isnull=False,
        pause_code__in=gate.CREDIT_PAUSE_CODES,
    )
    handed = 0
    for account in paused:
        claimed = ProviderAccount.objects.filter(
            pk=account.pk, credits_checked_at=account.credits_checked_at
        ).update(credits_checked_at=timezone.now())
        if claimed:
            enqueue_credits_recheck(account.provider)
            handed += 1
    return handed


# Tasks waiting in the broker beyond which nothing more is handed over. A step that waits
# longer than its lease is handed over a second time; under a backlog that would feed itself.
# Kept short, too, because a callback's task queues behind whatever waits: a thousand queued
# jobs are handed over as the workers take them, not all at once.
MAX_BACKLOG = 40


def backlog_room() -> int:
    """How many more tasks may wait for the workers: MAX_BACKLOG less those waiting."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    if Conf.SYNC:  # tasks run where they are handed over: nothing waits
        return sys.maxsize
    return max(MAX_BACKLOG - int(get_broker().queue_size() or 0), 0)


def _lease(now: datetime.datetime) -> datetime.datetime:
    return now - datetime.timedelta(seconds=conf("STEP_LEASE_SECONDS"))


def queued_due(now: datetime.datetime) -> Q:
    """Queued jobs that may go now and are not in a worker's hands."""
    return (
        Q(state=S.QUEUED)
        & (Q(submit_after__isnull=True) | Q(submit_after__lte=now))
        & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=_lease(now)))
    )


def submissions_dispatch(*, now: datetime.datetime | None = None, room: int | None = None) -> int:
    """Hand the oldest due queued jobs to workers, as many as the rate limit and the in-flight
    cap leave room for (less those already handed over), so a held job goes as soon as its slot
    opens and no worker is woken only to be told to wait; and no more than the broker's `room`
    (`backlog_room()` unless given). Returns how many were handed over.

    The slot itself is still claimed by `gate.claim_submission_slot` under the account's lock:
    this only keeps the number of hopeless attempts small.
    """
    now = now or timezone.now()
    room = backlog_room() if room is None else room
    if room <= 0:
        return 0
    providers = (
        GenerationJob.objects.filter(queued_due(now))
        .order_by()  # not by the default ordering, which DISTINCT would then take in
        .values_list("provider", flat=True)
        .distinct()
    )
    handed = 0
    waiting = list(providers)
    share = -(-room // len(waiting)) if waiting else 0  # each provider its part of the room
    for provider in waiting:
        slots = gate.free_slots(provider, now=now)
        if slots.free <= 0:
            # Say why they wait (written once: the rows that say so already are left alone).
            GenerationJob.objects.filter(queued_due(now), provider=provider).exclude(
                state_reason=slots.why_none
            ).update(state_reason=slots.why_none)
            continue
        # Before work goes out, the balance it will be judged by is known (read again when the
        # cached one is older than CREDITS_CACHE_SECONDS).
        gate.refresh_credits_if_stale(slots.account, get_provider(provider))
        handed_over = GenerationJob.objects.filter(
            provider=provider, state=S.QUEUED, dispatched_at__gte=_lease(now)
        ).count()
        due = (
            GenerationJob.objects.filter(queued_due(now), provider=provider)
            .order_by("created")
            .values_list("pk", "dispatched_at")[
                : max(min(slots.free - handed_over, share, room - handed), 0)
            ]
        )
        handed += hand_over(
            GenerationJob,
            due,
            field="dispatched_at",
            to=now,
            enqueue=enqueue_submit,
            state=S.QUEUED,
        )
    return handed


def jobs_poll_due(*, now: datetime.datetime | None = None) -> int:
    """Hand to workers a poll of every job whose callback is overdue (and of every timed-out job
    due for its slow look for a late clip), each at its own time. Returns how many."""
    now = now or timezone.now()
    due = GenerationJob.objects.filter(
        Q(state__in=[S.SUBMITTED, S.GENERATING, S.CANCELED])
        | Q(state=S.FAILED, provider_error_code="timeout"),
        next_poll_at__lte=now,
        provider_task_id__isnull=False,
    ).values_list("pk", "state", "next_poll_at")
    polled = 0
    for job_id, state, next_poll_at in due[:500]:
        if state == S.FAILED:
            delay = float(conf("LATE_POLL_SECONDS"))
        else:
            # Held back while the poll waits for a worker; the poll then sets its back-off.
            delay = float(conf("STEP_LEASE_SECONDS"))
        # Claim this poll: of two clocks, only the one whose UPDATE matches hands it over. The
        # next one is set now, so a poll whose task is lost is made again at that time.
        claimed = GenerationJob.objects.filter(pk=job_id, next_poll_at=next_poll_at).update(
            next_poll_at=now + datetime.timedelta(seconds=delay),
            poll_attempts=F("poll_attempts") + 1,
        )
        if claimed:
            enqueue_poll(job_id, as_of=now)
            polled += 1
    return polled


def retrievals_dispatch(*, now: datetime.datetime | None = None) -> int:
    """Hand to workers the retrievals whose back-off has passed, or whose worker's lease ran out
    (it died, or its task was lost). Returns how many."""
    now = now or timezone.now()
    due = GenerationJob.objects.filter(
        Q(retrieve_after__lte=now) | Q(retrieve_after__isnull=True, updated__lt=_lease(now)),
        state=S.RETRIEVING,
    ).values_list("pk", "retrieve_after")
    return hand_over(
        GenerationJob,
        due[:500],
        field="retrieve_after",
        to=retrieval_lease_end(now),
        enqueue=enqueue_retrieve,
        state=S.RETRIEVING,
    )


def stale_submissions_dispatch(*, now: datetime.datetime | None = None) -> int:
    """Hand to workers the jobs left `submitting` for longer than a createTask can take (their
    worker died between claiming a slot and saving the answer), each once a lease. Returns how
    many."""
    now = now or timezone.now()
    stale = now - datetime.timedelta(seconds=conf("SUBMIT_STALE_SECONDS"))
    due = GenerationJob.objects.filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=_lease(now)),
        state=S.SUBMITTING,
        updated__lt=stale,
    ).values_list("pk", "dispatched_at")
    return hand_over(
        GenerationJob,
        due[:500],
        field="dispatched_at",
        to=now,
        enqueue=enqueue_recover_submission,
        state=S.SUBMITTING,
    )


def retrieval_lease_end(now: datetime.datetime) -> datetime.datetime:
    return now + datetime.timedelta(seconds=conf("STEP_LEASE_SECONDS"))


def clock_run(
    stop: threading.Event, *, interval: float, on_tick: Callable[[], object] = tick
) -> None:
    """Run `on_tick` every `interval` seconds until `stop` is set; an error is logged, not fatal."""
    while not stop.wait(interval):
        try:
            close_old_connections()
            on_tick()
        except Exception:
            logger.exception("The job clock's tick failed")


def clock_start() -> threading.Thread | None:
    """Start the clock in a daemon thread of this process (a django-q2 worker), unless
    CLOCK_SECONDS is 0. Returns the thread."""
    interval = float(conf("CLOCK_SECONDS"))
    if interval <= 0:
        return None
    thread = threading.Thread(
        target=clock_run,
        args=(threading.Event(),),
        kwargs={"interval": interval},
        name="reelforge-job-clock",
        daemon=True,
    )
    thread.start()
    return thread
