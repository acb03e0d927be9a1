"""Writes of money. Each job is reserved at most once, charged at most once and released at most
once (the ledger's unique constraint makes a duplicate a no-op, whoever races), so a job's
ledger always sums to what was actually charged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction

from billing.models import Budget, EntryKind, LedgerEntry, Price
from billing.selectors import price_for, project_money
from videos.models import GenerationJob, JobState

logger = logging.getLogger(__name__)
CENT_FRACTION = Decimal("0.0001")


def job_price(*, duration: int, sound: bool, provider: str = "kie") -> Price:
    """Today's price row for one clip (its `usd` and the `credits` the provider will take)."""
    return price_for(duration=duration, sound=sound, provider=provider)


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
        budgets_lock([job.project_id])
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


def budgets_lock(project_ids: Iterable[int]) -> None:
    """Lock the budgets of these projects until the transaction ends, in a fixed order.

    Whoever checks a budget and then writes against it (admitting jobs, reserving) holds this
    lock, so two requests can never both take the last dollars. SQLite's IMMEDIATE transactions
    serialise writers already; PostgreSQL needs the row lock.
    """
    list(
        Budget.objects.select_for_update()
        .filter(project_id__in=sorted(set(project_ids)))
        .order_by("project_id")
        .values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class Settlement:
    charged_usd: Decimal
    created: bool  # False: the job had been charged already, `charged_usd` is that charge
    discrepancy: str  # why the charge differs from what was reported or allowed; "" if it does not


def _charge_cap(job: GenerationJob) -> Decimal:
    """The most a clip may be charged: its list price, or its reservation if that was lower."""
    cap = price_for(
        duration=job.duration, sound=job.sound, provider=job.provider, on=job.created.date()
    ).usd
    reserve = LedgerEntry.objects.filter(job=job, kind=EntryKind.RESERVE).first()
    return min(cap, reserve.amount) if reserve is not None else cap


def charge_for_credits(*, job: GenerationJob, credits: Decimal | None) -> tuple[Decimal, str]:
    """What to charge for the provider's reported credits, and any discrepancy to flag.

    Credits are converted at the price list's rate. A report above the clip's list price (or its
    reservation) is never charged: the cap is, and the difference is flagged for a person. The
    signature on a callback covers only the task id, so the amount is not to be trusted blindly.
    """
    cap = _charge_cap(job)
    if credits is None or credits < 0:
        return cap, ""
    price = price_for(
        duration=job.duration, sound=job.sound, provider=job.provider, on=job.created.date()
    )
    reported = (credits * price.usd_per_credit).quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)
    if reported <= cap:
        return reported, ""
    return cap, (
        f"The provider reported {credits} credits (${reported}), above the list price ${cap} "
        f"for this clip; charged ${cap}."
    )


def _over_budget_after_release(job: GenerationJob, amount: Decimal) -> str:
    """A late clip is charged after its reservation was given back: say so if that overspends."""
    reserve = LedgerEntry.objects.filter(job=job, kind=EntryKind.RESERVE).exists()
    released = LedgerEntry.objects.filter(job=job, kind=EntryKind.RELEASE).exists()
    if reserve and not released:
        return ""
    money = project_money(job.project)
    if money.cap_usd is None or money.spent_usd + money.reserved_usd + amount <= money.cap_usd:
        return ""
    return (
        f"Charged ${amount} after its reservation had been released (the clip came late); it "
        f"takes the project past its ${money.cap_usd} monthly budget."
    )


def job_settle(*, job: GenerationJob, credits: Decimal | None) -> Settlement:
    """Charge what the clip cost and release its reservation.

    Idempotent: a job already charged keeps its charge (`created` False).
    """
    amount, discrepancy = charge_for_credits(job=job, credits=credits)
    with transaction.atomic():
        budgets_lock([job.project_id])
        over_budget = _over_budget_after_release(job, amount)
        charged = _append_once(
            job=job,
            kind=EntryKind.CHARGE,
            amount=amount,
            note=f"{credits} provider credits" if credits is not None else "List price",
        )
        job_release(job=job, note="Settled")
    if not charged:
        existing = LedgerEntry.objects.get(job=job, kind=EntryKind.CHARGE).amount
        return Settlement(charged_usd=existing, created=False, discrepancy="")
    return Settlement(
        charged_usd=amount,
        created=True,
        discrepancy=" ".join(part for part in (discrepancy, over_budget) if part),
    )
