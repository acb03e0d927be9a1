"""Whether the provider account may take one more task now: shared by every worker on every host.

The `ProviderAccount` row is the lock each submitter takes in turn (SELECT ... FOR UPDATE on
PostgreSQL; SQLite's IMMEDIATE transactions serialise writers the same way). Under it the gate
checks the pause switch, the cached credit balance, the rate limit (submissions in the window,
counted from their `submitting` events) and the cap on tasks in flight.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
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


def claim_submission_slot(job: GenerationJob) -> float | None:
    """Move the job to `submitting` if the account may send one more task now.

    Returns None when claimed, else the seconds to wait (infinity while paused); the job stays
    queued and says why.
    """
    conf = settings.PIPELINE
    now = timezone.now()
    window = datetime.timedelta(seconds=conf["RATE_LIMIT_WINDOW_SECONDS"])
    needed_credits = Decimal(
        price_for(duration=job.duration, sound=job.sound, provider=job.provider).credits
    )
    wait = float("inf")
    with transaction.atomic():
        account, _ = ProviderAccount.objects.select_for_update().get_or_create(
            provider=job.provider
        )
        if account.is_paused:
            reason = f"Held: submissions are paused ({account.pause_reason})."
        elif account.credits_left is not None and account.credits_left < needed_credits:
            reason = (
                f"Held: the provider account has {account.credits_left} credits and this clip "
                f"needs {needed_credits}."
            )
            _pause(account, code="credits", reason=reason)
        else:
            recent = JobEvent.objects.filter(
                to_state=JobState.SUBMITTING, created__gte=now - window, job__provider=job.provider
            ).order_by("created")
            in_flight = GenerationJob.objects.filter(
                provider=job.provider, state__in=IN_FLIGHT_STATES
            ).count()
            if recent.count() >= conf["RATE_LIMIT_TASKS"]:
                # At least RATE_LIMIT_TASKS (> 0) events, so there is a first.
                wait = max((recent.first().created + window - now).total_seconds(), 0.5)  # type: ignore[union-attr]
                reason = f"Waiting {wait:.1f} s for the provider's rate limit."
            elif in_flight >= conf["MAX_IN_FLIGHT"]:
                wait = float(conf["POLL_INITIAL_SECONDS"])
                reason = f"Waiting: {in_flight} tasks are already in flight at the provider."
            elif transition(
                job,
                to=JobState.SUBMITTING,
                party=Party.WORKER,
                reason="Sending to the provider.",
                submit_attempts=F("submit_attempts") + 1,
                submit_after=None,
            ):
                if account.credits_left is not None:
                    # Count what this clip will spend until the next balance check.
                    account.credits_left -= needed_credits
                    account.save(update_fields=["credits_left"])
                return None
            else:
                return wait  # another worker has it
            if wait != float("inf"):
                GenerationJob.objects.filter(pk=job.pk, state=JobState.QUEUED).update(
                    submit_after=now + datetime.timedelta(seconds=wait)
                )
    note(job, reason)
    return wait


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
    ProviderAccount.objects.filter(pk=account.pk).update(
        credits_left=credits, credits_checked_at=timezone.now()
    )
    cheapest = cheapest_credits(provider=provider_name)
    return cheapest is not None and credits >= cheapest
