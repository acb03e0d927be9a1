"""Writes of money. Each job is reserved at most once, charged at most once and released at most
once (the ledger's unique constraint makes a duplicate a no-op, whoever races), so a job's
ledger always sums to what was actually charged.
"""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction

from billing.models import Budget, EntryKind, LedgerEntry
from billing.selectors import price_for, project_money
from videos.models import GenerationJob, JobState

logger = logging.getLogger(__name__)
CENT_FRACTION = Decimal("0.0001")


def job_estimate_usd(*, duration: int, sound: bool, provider: str = "kie") -> Decimal:
    return price_for(duration=duration, sound=sound, provider=provider).usd


def _append_once(*, job: GenerationJob, kind: str, amount: Decimal, note: str) -> bool:
    """Write the job's one entry of `kind`; False if it exists already."""
    if LedgerEntry.objects.filter(job=job, kind=kind).exists():
        return False
    try:
        with transaction.atomic():
            LedgerEntry.objects.create(
                project_id=job.project_id, job=job, kind=kind, amount=amount, note=note
            )
    except IntegrityError:  # another worker wrote it between our check and insert
        return False
    return True


def budget_reserve(*, job: GenerationJob) -> bool:
    """Reserve a queued job's estimate against its project's monthly budget.

    Returns False only when the budget cannot cover it. The budget row is locked so two workers
    cannot both take the last dollars, and the job row so a cancel cannot slip in between: a job
    that is no longer queued is not reserved (a canceled one must not keep a reservation).
    """
    with transaction.atomic():
        Budget.objects.select_for_update().filter(project_id=job.project_id).first()
        still_queued = (
            GenerationJob.objects.select_for_update()
            .filter(pk=job.pk, state=JobState.QUEUED)
            .exists()
        )
        if not still_queued or LedgerEntry.objects.filter(job=job, kind=EntryKind.RESERVE).exists():
            return True
        if not project_money(job.project).can_reserve(job.estimated_cost_usd):
            return False
        _append_once(
            job=job,
            kind=EntryKind.RESERVE,
            amount=job.estimated_cost_usd,
            note="Reserved before submitting",
        )
        return True


def job_release(*, job: GenerationJob, note: str) -> None:
    """Give back the job's reservation, if it has one that is not yet released."""
    reserve = LedgerEntry.objects.filter(job=job, kind=EntryKind.RESERVE).first()
    if reserve is not None:
        _append_once(job=job, kind=EntryKind.RELEASE, amount=reserve.amount, note=note)


def charge_for_credits(*, job: GenerationJob, credits: Decimal | None) -> Decimal:
    """USD for the provider's reported credits at the price list's rate, else the list price."""
    price = price_for(
        duration=job.duration, sound=job.sound, provider=job.provider, on=job.created.date()
    )
    if credits is None or credits < 0:
        return price.usd
    return (credits * price.usd_per_credit).quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)


def job_settle(*, job: GenerationJob, credits: Decimal | None) -> tuple[Decimal, bool]:
    """Charge what the clip cost and release its reservation.

    Idempotent: returns the charge and whether this call made it (False: it existed already).
    """
    amount = charge_for_credits(job=job, credits=credits)
    with transaction.atomic():
        charged = _append_once(
            job=job,
            kind=EntryKind.CHARGE,
            amount=amount,
            note=f"{credits} provider credits" if credits is not None else "List price",
        )
        job_release(job=job, note="Settled")
    if not charged:
        return LedgerEntry.objects.get(job=job, kind=EntryKind.CHARGE).amount, False
    return amount, True

