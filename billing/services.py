"""Writes of money: budgets, and the ledger. Each job is reserved at most once, charged at most
once and released at most once (the ledger's unique constraint makes a duplicate a no-op, whoever
races), so a job's ledger always sums to what was actually charged.

Like the selectors, nothing here imports `videos`: jobs and projects are `BilledJob` and
`BilledProject`, and their tables are reached through the ledger's foreign keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

# The two warning-threshold names are here for the doors that ask for a budget (the admin).
from billing.models import (  # noqa: F401
    WARNING_THRESHOLD_DEFAULT,
    WARNING_THRESHOLD_HELP,
    Budget,
    EntryKind,
    LedgerEntry,
    Price,
)
from billing.selectors import (
    QUEUED,
    BilledJob,
    BilledProject,
    job_model,
    price_for,
    project_money,
)

logger = logging.getLogger(__name__)
CENT_FRACTION = Decimal("0.0001")


def job_price(*, duration: int, sound: bool, provider: str = "kie") -> Price:
    """Today's price row for one clip (its `usd` and the `credits` the provider will take)."""
    return price_for(duration=duration, sound=sound, provider=provider)


def _append_once(*, job: BilledJob, kind: str, amount: Decimal, note: str) -> bool:
    """Write the job's one entry of `kind`; False if it exists already."""
    if LedgerEntry.objects.filter(job_id=job.pk, kind=kind).exists():
        return False
    try:
        with transaction.atomic():
            LedgerEntry.objects.create(
                project_id=job.project_id, job_id=job.pk, kind=kind, amount=amount, note=note
            )
    except IntegrityError:  # another worker wrote it between our check and insert
        return False
    return True


def budget_reserve(*, job: BilledJob) -> bool:
    """Reserve a queued job's estimate against its project's monthly budget.

    Returns False only when the budget cannot cover it. The budget row is locked so two workers
    cannot both take the last dollars, and the job row so a cancel cannot slip in between: a job
    that is no longer queued is not reserved (a canceled one must not keep a reservation).
    """
    with transaction.atomic():
        budgets_lock([job.project_id])
        still_queued = (
            job_model()
            ._default_manager.select_for_update()
            .filter(pk=job.pk, state=QUEUED)
            .exists()
        )
        if (
            not still_queued
            or LedgerEntry.objects.filter(job_id=job.pk, kind=EntryKind.RESERVE).exists()
        ):
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


def job_release(*, job: BilledJob, note: str) -> None:
    """Give back the job's reservation, if it has one that is not yet released."""
    reserve = LedgerEntry.objects.filter(job_id=job.pk, kind=EntryKind.RESERVE).first()
    if reserve is not None:
        _append_once(job=job, kind=EntryKind.RELEASE, amount=reserve.amount, note=note)


def _check_budget(*, monthly_cap_usd: Decimal, warning_threshold: Decimal | None) -> None:
    errors: dict[str, str] = {}
    if monthly_cap_usd < 0:
        errors["monthly_cap_usd"] = "The monthly budget must not be negative."
    if warning_threshold is not None and not Decimal("0") < warning_threshold <= Decimal("1"):
        errors["warning_threshold"] = (
            "The warning threshold is a fraction of the budget: more than 0, at most 1 "
            "(0.80 warns at 80%)."
        )
    if errors:
        raise ValidationError(errors)


def budget_set(
    *,
    project: BilledProject,
    monthly_cap_usd: Decimal | None,
    warning_threshold: Decimal | None = None,
) -> Budget | None:
    """Cap the project's monthly spend at `monthly_cap_usd`, or lift the cap with None.

    `warning_threshold` is the fraction of the cap at which spend is flagged; None keeps the
    budget's current one (0.80 for a new budget). Jobs already reserved keep their reservation;
    queued jobs wait if the new cap is lower. Raises `ValidationError` (field -> message).
    """
    if monthly_cap_usd is None:
        budget_delete(project=project)
        return None
    _check_budget(monthly_cap_usd=monthly_cap_usd, warning_threshold=warning_threshold)
    wanted: dict[str, Decimal] = {"monthly_cap_usd": monthly_cap_usd}
    if warning_threshold is not None:
        wanted["warning_threshold"] = warning_threshold
    with transaction.atomic():
        budget, _ = Budget.objects.select_for_update().get_or_create(
            project_id=project.pk, defaults=wanted
        )
        changed = [field for field, value in wanted.items() if getattr(budget, field) != value]
        for field in changed:
            setattr(budget, field, wanted[field])
        if changed:
            budget.save(update_fields=[*changed, "updated"])
    return budget


def budget_delete(*, project: BilledProject) -> None:
    """Lift the project's cap (its spend stays in the ledger), or do nothing if it has none."""
    Budget.objects.filter(project_id=project.pk).delete()


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


def _charge_cap(job: BilledJob, price: Price) -> Decimal:
    """The most a clip may be charged: its list price, or its reservation if that was lower."""
    reserve = LedgerEntry.objects.filter(job_id=job.pk, kind=EntryKind.RESERVE).first()
    return min(price.usd, reserve.amount) if reserve is not None else price.usd


def charge_for_credits(*, job: BilledJob, credits: Decimal | None) -> tuple[Decimal, str]:
    """What to charge for the provider's reported credits, and any discrepancy to flag.

    Credits are converted at the price list's rate. A report above the clip's list price (or its
    reservation) is never charged: the cap is, and the difference is flagged for a person. The
    signature on a callback covers only the task id, so the amount is not to be trusted blindly.
    """
    price = price_for(
        duration=job.duration, sound=job.sound, provider=job.provider, on=job.created.date()
    )
    cap = _charge_cap(job, price)
    if credits is None or credits < 0:
        return cap, ""
    reported = (credits * price.usd_per_credit).quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)
    if reported <= cap:
        return reported, ""
    return cap, (
        f"The provider reported {credits} credits (${reported}), above the list price ${cap} "
        f"for this clip; charged ${cap}."
    )


def _over_budget_after_release(job: BilledJob, amount: Decimal) -> str:
    """A late clip is charged after its reservation was given back: say so if that overspends."""
    reserve = LedgerEntry.objects.filter(job_id=job.pk, kind=EntryKind.RESERVE).exists()
    released = LedgerEntry.objects.filter(job_id=job.pk, kind=EntryKind.RELEASE).exists()
    if reserve and not released:
        return ""
    money = project_money(job.project)
    if money.cap_usd is None or money.spent_usd + money.reserved_usd + amount <= money.cap_usd:
        return ""
    return (
        f"Charged ${amount} after its reservation had been released (the clip came late); it "
        f"takes the project past its ${money.cap_usd} monthly budget."
    )


def job_settle(*, job: BilledJob, credits: Decimal | None) -> Settlement:
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
        existing = LedgerEntry.objects.get(job_id=job.pk, kind=EntryKind.CHARGE).amount
        return Settlement(charged_usd=existing, created=False, discrepancy="")
    return Settlement(
        charged_usd=amount,
        created=True,
        discrepancy=" ".join(part for part in (discrepancy, over_budget) if part),
    )
