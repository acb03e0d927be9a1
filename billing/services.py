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
from django.db.models import Exists, OuterRef
from django.dispatch import Signal
from django.utils import timezone

# The two warning-threshold names are here for the doors that ask for a budget (the admin).
from billing.models import (  # noqa: F401
    WARNING_THRESHOLD_DEFAULT,
    WARNING_THRESHOLD_HELP,
    AlertLevel,
    Budget,
    BudgetAlert,
    EntryKind,
    LedgerEntry,
    Price,
)
from billing.selectors import (
    QUEUED,
    BilledJob,
    BilledProject,
    ProjectMoney,
    job_model,
    price_for,
    project_money,
)

logger = logging.getLogger(__name__)

# Sent after a transaction that recorded new budget alerts commits.
budget_alerts_recorded = Signal()
CENT_FRACTION = Decimal("0.0001")


def job_price(*, duration: int, sound: bool, provider: str = "kie") -> Price:
    """Today's price row for one clip (its `usd` and the `credits` the provider will take)."""
    return price_for(duration=duration, sound=sound, provider=provider)


def _append_once(
    *, job: BilledJob, kind: str, amount: Decimal, note: str, known_absent: bool = False
) -> bool:
    """Write the job's one entry of `kind`; False if it exists already. `known_absent`: the
    caller read the job's entries under the budget's lock and this kind was not among them."""
    if not known_absent and LedgerEntry.objects.filter(job_id=job.pk, kind=kind).exists():
        return False
    try:
        with transaction.atomic():
            LedgerEntry.objects.create(
                project_id=job.project_id, job_id=job.pk, kind=kind, amount=amount, note=note
            )
    except IntegrityError:  # another worker wrote it between our check and insert
        return False
    return True


def _job_entries(job: BilledJob) -> dict[str, Decimal]:
    """The job's ledger entries, kind -> amount (a job has at most one entry of each kind)."""
    return dict(LedgerEntry.objects.filter(job_id=job.pk).values_list("kind", "amount"))


def budget_reserve(*, job: BilledJob) -> bool:
    """Reserve a queued job's estimate against its project's monthly budget.

    Returns False only when the budget cannot cover it. The budget row is locked so two workers
    cannot both take the last dollars, and the job row so a cancel cannot slip in between: a job
    that is no longer queued is not reserved (a canceled one must not keep a reservation).
    """
    with transaction.atomic():
        budgets_lock([job.project_id])
        reserved = (
            job_model()
            ._default_manager.select_for_update()
            .filter(pk=job.pk, state=QUEUED)
            .annotate(
                reserved=Exists(
                    LedgerEntry.objects.filter(job_id=OuterRef("pk"), kind=EntryKind.RESERVE)
                )
            )
            .values_list("reserved", flat=True)
            .first()
        )
        if reserved is None or reserved:  # no longer queued, or reserved already
            return True
        money = project_money(job.project)
        if not money.can_reserve(job.estimated_cost_usd):
            return False
        _append_once(
            job=job,
            kind=EntryKind.RESERVE,
            amount=job.estimated_cost_usd,
            note="Reserved before submitting",
            known_absent=True,
        )
        budget_alerts_record(project=job.project, money=money, added_usd=job.estimated_cost_usd)
        return True


def budget_alerts_record(
    *,
    project: BilledProject,
    money: ProjectMoney | None = None,
    added_usd: Decimal = Decimal("0"),
) -> list[BudgetAlert]:
    """The budget thresholds the project's spend and reservations have newly crossed this
    month, each recorded once (the row is the outbox the announcer reads; see
    `videos.webhooks.alerts`). Call it where money is committed, in that transaction; a
    caller that read the project's money just before passes it with what it `added_usd`, so
    the common case (no threshold crossed) costs no query."""
    money = money or project_money(project)
    if not money.cap_usd:
        return []
    committed = money.spent_usd + money.reserved_usd + added_usd
    levels = []
    if money.warning_threshold is not None and committed >= money.cap_usd * money.warning_threshold:
        levels.append(AlertLevel.WARNING)
    if committed >= money.cap_usd:
        levels.append(AlertLevel.EXHAUSTED)
    recorded = []
    for level in levels:
        try:
            with transaction.atomic():
                alert, created = BudgetAlert.objects.get_or_create(
                    project_id=project.pk,
                    month=money.month,
                    level=level,
                    defaults={"spent_usd": committed, "cap_usd": money.cap_usd},
                )
        except IntegrityError:  # another worker recorded it first
            continue
        if created:
            recorded.append(alert)
    if recorded:
        # Whoever tells people about alerts (videos) hears of them once the money commits.
        transaction.on_commit(lambda: budget_alerts_recorded.send(sender=BudgetAlert))
    return recorded


def budget_alerts_unannounced() -> list[BudgetAlert]:
    return list(BudgetAlert.objects.filter(announced_at__isnull=True).order_by("created"))


def budget_alert_announced(alert: BudgetAlert) -> bool:
    """Mark the alert told; False if another worker told it first."""
    return bool(
        BudgetAlert.objects.filter(pk=alert.pk, announced_at__isnull=True).update(
            announced_at=timezone.now()
        )
    )


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


def _charge_cap(job: BilledJob, price: Price, reserved: Decimal | None) -> Decimal:
    """The most a clip may be charged: its list price, or its reservation if that was lower."""
    return min(price.usd, reserved) if reserved is not None else price.usd


def charge_for_credits(
    *, job: BilledJob, credits: Decimal | None, reserved: Decimal | None
) -> tuple[Decimal, str]:
    """What to charge for the provider's reported credits, and any discrepancy to flag.

    Credits are converted at the price list's rate. A report above the clip's list price (or its
    reservation) is never charged: the cap is, and the difference is flagged for a person. The
    signature on a callback covers only the task id, so the amount is not to be trusted blindly.
    """
    price = price_for(
        duration=job.duration, sound=job.sound, provider=job.provider, on=job.created.date()
    )
    cap = _charge_cap(job, price, reserved)
    if credits is None or credits < 0:
        return cap, ""
    reported = (credits * price.usd_per_credit).quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)
    if reported <= cap:
        return reported, ""
    return cap, (
        f"The provider reported {credits} credits (${reported}), above the list price ${cap} "
        f"for this clip; charged ${cap}."
    )


def _over_budget_after_release(job: BilledJob, amount: Decimal, entries: dict[str, Decimal]) -> str:
    """A late clip is charged after its reservation was given back: say so if that overspends."""
    if EntryKind.RESERVE in entries and EntryKind.RELEASE not in entries:
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
    with transaction.atomic():
        entries = _job_entries(job)
        if not (EntryKind.RESERVE in entries and EntryKind.RELEASE not in entries):
            # A late clip is checked against the budget: under its lock, and read again.
            budgets_lock([job.project_id])
            entries = _job_entries(job)
        amount, discrepancy = charge_for_credits(
            job=job, credits=credits, reserved=entries.get(EntryKind.RESERVE)
        )
        over_budget = _over_budget_after_release(job, amount, entries)
        charged = EntryKind.CHARGE not in entries and _append_once(
            job=job,
            kind=EntryKind.CHARGE,
            amount=amount,
            note=f"{credits} provider credits" if credits is not None else "List price",
            known_absent=True,
        )
        if EntryKind.RESERVE in entries and EntryKind.RELEASE not in entries:
            _append_once(
                job=job,
                kind=EntryKind.RELEASE,
                amount=entries[EntryKind.RESERVE],
                note="Settled",
                known_absent=True,
            )
        if charged and amount > entries.get(EntryKind.RESERVE, Decimal("0")):
            # More than was reserved (a late clip): spend grew past what the reservation told.
            budget_alerts_record(project=job.project)
    if not charged:
        existing = LedgerEntry.objects.get(job_id=job.pk, kind=EntryKind.CHARGE).amount
        return Settlement(charged_usd=existing, created=False, discrepancy="")
    return Settlement(
        charged_usd=amount,
        created=True,
        discrepancy=" ".join(part for part in (discrepancy, over_budget) if part),
    )
