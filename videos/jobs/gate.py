"""Whether the provider account may take one more task now: shared by every worker on every host.

The `ProviderAccount` row is the lock each submitter takes in turn (SELECT ... FOR UPDATE on
PostgreSQL; SQLite's IMMEDIATE transactions serialise writers the same way). Under it the gate
checks the pause switch, the cached credit balance, the rate limit (submissions in the window,
counted from the provider's answers and the createTasks on their way) and the cap on tasks
in flight. Counts are read after the lock is held, never in the statement that takes it.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Func, IntegerField, QuerySet, Subquery
from django.utils import timezone

from billing.selectors import PriceMissing, cheapest_credits, price_for
from videos.jobs.states import Party, note, transition
from videos.models import (
    IN_FLIGHT_STATES,
    GenerationJob,
    JobEvent,
    JobState,
    ProviderAccount,
)
from videos.providers import get_provider
from videos.providers.base import Action, ProviderError, VideoProvider
from videos.webhooks.events import submissions_paused

logger = logging.getLogger(__name__)

# Pauses that lift by themselves once the balance can pay for a clip again.
CREDIT_PAUSE_CODES = {"402", "credits"}


def account_for(provider: str) -> ProviderAccount:
    account, _ = ProviderAccount.objects.get_or_create(provider=provider)
    return account


@dataclass(frozen=True)
class Balance:
    """The provider balance (as last seen) against what queued jobs and new ones will take."""

    credits_left: Decimal | None  # None: never read yet, so nothing is refused for it
    checked_at: datetime.datetime | None
    queued_credits: int  # jobs already waiting to be submitted
    credits_needed: int

    @property
    def available(self) -> Decimal | None:
        return None if self.credits_left is None else self.credits_left - self.queued_credits

    @property
    def covers(self) -> bool:
        return self.available is None or self.available >= self.credits_needed

    @property
    def message(self) -> str:
        if self.covers:
            return ""
        return (
            f"The provider account has {self.credits_left} credits left, {self.queued_credits} "
            f"of them for jobs already queued, and these jobs need {self.credits_needed}. Add "
            "credits, or queue them to wait until the balance can pay "
            '(API: "wait_for_credits": true).'
        )


def balance_for(*, credits_needed: int, provider: str = "kie") -> Balance:
    """Whether the cached provider balance can pay for `credits_needed` beside queued jobs."""
    account = account_for(provider)
    queued = (
        GenerationJob.objects.filter(provider=provider, state=JobState.QUEUED)
        .values("duration", "sound")
        .annotate(jobs=Count("pk"))
    )
    queued_credits = 0
    for row in queued:
        try:
            credits = price_for(
                duration=row["duration"], sound=row["sound"], provider=provider
            ).credits
        except PriceMissing:
            continue
        queued_credits += credits * row["jobs"]
    return Balance(
        credits_left=account.credits_left,
        checked_at=account.credits_checked_at,
        queued_credits=queued_credits,
        credits_needed=credits_needed,
    )


@dataclass(frozen=True)
class Claim:
    account: ProviderAccount  # as read under its lock
    wait: float | None  # None: claimed; else seconds to wait (infinity while paused)


def claim_submission_slot(job: GenerationJob) -> Claim:
    """Move the job to `submitting` if the account may send one more task now.

    Unless it was claimed (`wait` None) the job stays queued and says why.
    """
    conf = settings.PIPELINE
    now = timezone.now()
    window = rate_window()
    needed_credits = Decimal(
        price_for(duration=job.duration, sound=job.sound, provider=job.provider).credits
    )
    wait = float("inf")
    with transaction.atomic():
        usage = account_usage(job.provider, now=now, lock=True)
        account = usage.account
        if account.is_paused:
            reason = f"Held: submissions are paused ({account.pause_reason})."
        elif account.credits_left is not None and account.credits_left < needed_credits:
            reason = (
                f"Held: the provider account has {account.credits_left} credits and this clip "
                f"needs {needed_credits}."
            )
            _pause(account, code="credits", reason=reason)
        else:
            in_flight = usage.in_flight
            if usage.recent >= conf["RATE_LIMIT_TASKS"]:
                # At least RATE_LIMIT_TASKS (> 0) events, so there is a first.
                first = (
                    accepted_within(job.provider, now=now, window=window)
                    .order_by("created")
                    .values_list("created", flat=True)
                    .first()
                )
                # None: every slot is a createTask still on its way; its answer comes soon.
                wait = max((first + window - now).total_seconds(), 0.5) if first else 0.5
                reason = f"Waiting {wait:.1f} s for the provider's rate limit."
            elif in_flight >= conf["MAX_IN_FLIGHT"]:
                wait = float(conf["POLL_INITIAL_SECONDS"])
                reason = f"Waiting: {in_flight} tasks are already in flight at the provider."
            elif transition(
                job,
                to=JobState.SUBMITTING,
                party=Party.WORKER,
                reason="Sending to the provider.",
                submit_attempts=job.submit_attempts + 1,  # only this job's submitter writes it
                submit_after=None,
                dispatched_at=None,
            ):
                if account.credits_left is not None:
                    # Count what this clip will spend until the next balance check.
                    ProviderAccount.objects.filter(pk=account.pk).update(
                        credits_left=account.credits_left - needed_credits
                    )
                return Claim(account, None)
            else:
                return Claim(account, wait)  # another worker has it
            if wait != float("inf"):
                GenerationJob.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
                    submit_after=now + datetime.timedelta(seconds=wait), dispatched_at=None
                )
    note(job, reason)
    return Claim(account, wait)


# The provider's clock and ours differ a little, and its window may end a moment after ours:
# the window is taken this much longer, so the two never disagree.
RATE_WINDOW_MARGIN = datetime.timedelta(seconds=0.5)


def rate_window() -> datetime.timedelta:
    seconds = settings.PIPELINE["RATE_LIMIT_WINDOW_SECONDS"]
    return datetime.timedelta(seconds=seconds) + RATE_WINDOW_MARGIN


def _count(rows: QuerySet[Any]) -> Subquery:
    """How many `rows` there are, as a subquery (COUNT without GROUP BY: it counts them all)."""
    counted = rows.order_by().values(n=Func(F("pk"), function="COUNT"))
    return Subquery(counted, output_field=IntegerField())


@dataclass(frozen=True)
class Usage:
    account: ProviderAccount
    recent: int  # tasks sent within the rate limit's window
    in_flight: int  # tasks the provider holds


def account_usage(provider: str, *, now: datetime.datetime, lock: bool = False) -> Usage:
    """The account and what it is using; the account's row stays locked until the transaction
    ends when `lock`."""
    window = rate_window()
    # The provider counts a task from when it accepted it, which is after we sent it and before
    # its answer came back: counted from the answer (the move to `submitted`), a window never
    # ends earlier than the provider's; a createTask still on its way counts as sent now.
    answered = accepted_within(provider, now=now, window=window)
    sending = GenerationJob.objects.filter(provider=provider, state=JobState.SUBMITTING)
    in_flight = GenerationJob.objects.filter(provider=provider, state__in=IN_FLIGHT_STATES)
    accounts = ProviderAccount.objects.filter(provider=provider)
    if lock and connection.features.has_select_for_update:
        # Locked first, counted after: PostgreSQL answers a statement from the snapshot taken
        # when it began, so counts read in the locking statement would miss what the previous
        # holder of the lock claimed while this one waited. (SQLite's IMMEDIATE transaction
        # holds the write lock from its start, so what it reads is never stale.)
        if not accounts.select_for_update().values_list("pk", flat=True):
            account_for(provider)
            accounts.select_for_update().get()
    rows = accounts.annotate(
        answered=_count(answered), sending=_count(sending), in_flight=_count(in_flight)
    )
    account = rows.first()
    if account is None:
        account_for(provider)
        account = rows.get()
    return Usage(account, recent=account.answered + account.sending, in_flight=account.in_flight)


def accepted_within(
    provider: str, *, now: datetime.datetime, window: datetime.timedelta
) -> QuerySet[JobEvent]:
    """Moves to `submitted` (the provider's answer saved) within the rate limit's window."""
    return JobEvent.objects.filter(
        to_state=JobState.SUBMITTED, created__gte=now - window, job__provider=provider
    )


@dataclass(frozen=True)
class Slots:
    free: int
    why_none: str  # what queued jobs are waiting for, when no slot is free
    account: ProviderAccount


def free_slots(provider: str, *, now: datetime.datetime) -> Slots:
    """How many more tasks the account may send now: what the rate limit's window and the cap
    on tasks in flight both leave, or none while submissions are paused."""
    conf = settings.PIPELINE
    usage = account_usage(provider, now=now)
    account = usage.account
    if account.is_paused:
        return Slots(0, f"Held: submissions are paused ({account.pause_reason}).", account)
    by_rate = conf["RATE_LIMIT_TASKS"] - usage.recent
    by_cap = conf["MAX_IN_FLIGHT"] - usage.in_flight
    if by_rate <= 0:
        why = (
            f"Waiting for the provider's rate limit ({conf['RATE_LIMIT_TASKS']} new tasks per "
            f"{conf['RATE_LIMIT_WINDOW_SECONDS']} s)."
        )
    elif by_cap <= 0:
        why = f"Waiting: {usage.in_flight} tasks are already in flight at the provider."
    else:
        why = ""
    return Slots(max(min(by_rate, by_cap), 0), why, account)


def refresh_credits_if_stale(account: ProviderAccount, provider: VideoProvider) -> None:
    """Ask the provider for its balance if `account`'s cached one is older than the cache time."""
    max_age = datetime.timedelta(seconds=settings.PIPELINE["CREDITS_CACHE_SECONDS"])
    if account.credits_checked_at and timezone.now() - account.credits_checked_at < max_age:
        return
    try:
        credits = provider.credits_left()
    except ProviderError as exc:
        if exc.action is Action.PAUSE:
            pause(account.provider, code=str(exc.code or ""), reason=exc.message)
        logger.warning("Could not read the %s credit balance: %s", account.provider, exc.message)
        return
    if credits is None:  # the provider reports no balance: nothing is held for one
        return
    ProviderAccount.objects.filter(pk=account.pk).update(
        credits_left=credits, credits_checked_at=timezone.now()
    )


def pause(provider: str, *, code: str, reason: str) -> None:
    """Stop every worker from submitting to `provider` until `resume`."""
    account_for(provider)
    with transaction.atomic():
        _pause(
            ProviderAccount.objects.select_for_update().get(provider=provider),
            code=code,
            reason=reason,
        )


def _pause(account: ProviderAccount, *, code: str, reason: str) -> None:
    if account.is_paused:
        return
    account.paused_at = timezone.now()
    account.pause_code = code
    account.pause_reason = reason
    account.save(update_fields=["paused_at", "pause_code", "pause_reason"])
    submissions_paused(provider=account.provider, code=code, reason=reason)
    logger.error("Submissions to %s paused (%s): %s", account.provider, code, reason)


def resume(provider: str) -> None:
    ProviderAccount.objects.filter(provider=provider).update(
        paused_at=None, pause_code="", pause_reason="", credits_checked_at=None
    )
    logger.warning("Submissions to %s resumed", provider)


def credits_returned(provider_name: str) -> bool:
    """For an account paused for lack of credits: whether the balance can pay for a clip again."""
    account = account_for(provider_name)
    if not account.is_paused or account.pause_code not in CREDIT_PAUSE_CODES:
        return False
    try:
        credits = get_provider(provider_name).credits_left()
    except ProviderError:
        return False
    if credits is None:
        return False
    ProviderAccount.objects.filter(pk=account.pk).update(
        credits_left=credits, credits_checked_at=timezone.now()
    )
    cheapest = cheapest_credits(provider=provider_name)
    return cheapest is not None and credits >= cheapest
