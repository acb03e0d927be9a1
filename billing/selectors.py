"""Reads of money: prices, and projects' spend and reservations, all derived from the ledger.

Projects and jobs are `videos`' rows. Billing imports nothing of `videos`: it reaches those tables
through its own foreign keys, and needs of the rows only what `BilledProject` and `BilledJob` name.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.db import models
from django.db.models import Count, Exists, F, Min, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.models import MONEY, Budget, EntryKind, LedgerEntry, Price

ZERO = Decimal("0")
# SQLite sums decimals as floats; every total is rounded back to the ledger's precision.
PRECISION = Decimal("0.0001")
# A job's state while it waits for its reservation: `videos.models.JobState.QUEUED` (a test
# checks they agree).
QUEUED = "queued"
SPENT_KINDS = (EntryKind.CHARGE, EntryKind.ADJUSTMENT)


class BilledProject(Protocol):
    """What billing needs of a project (a `videos.models.Project`)."""

    pk: Any


class BilledJob(Protocol):
    """What billing needs of a job (a `videos.models.GenerationJob`)."""

    pk: Any
    project: Any  # a BilledProject
    project_id: int
    estimated_cost_usd: Decimal
    duration: int
    sound: bool
    provider: str
    created: datetime.datetime


def project_model() -> type[models.Model]:
    """`videos.models.Project`, as the ledger's foreign key names it."""
    return LedgerEntry._meta.get_field("project").related_model


def job_model() -> type[models.Model]:
    """`videos.models.GenerationJob`, as the ledger's foreign key names it."""
    return LedgerEntry._meta.get_field("job").related_model


class PriceMissing(Exception):
    pass


def price_for(
    *,
    duration: int,
    sound: bool,
    provider: str = "kie",
    model: str = "kling-2.6",
    on: datetime.date | None = None,
) -> Price:
    """The price row in force on `on` (today by default) for one clip."""
    on = on or timezone.now().date()
    price = (
        Price.objects.filter(
            provider=provider, model=model, duration=duration, sound=sound, effective_from__lte=on
        )
        .order_by("-effective_from")
        .first()
    )
    if price is None:
        raise PriceMissing(
            f"No price for a {duration} s {'sound' if sound else 'silent'} {model} clip "
            f"on {on}: add one to the price list."
        )
    return price


def cheapest_credits(*, provider: str, on: datetime.date | None = None) -> int | None:
    """The fewest credits any clip at `provider` costs by the price rows in effect on `on` (today
    by default); None when it has no prices."""
    on = on or timezone.now().date()
    return Price.objects.filter(provider=provider, effective_from__lte=on).aggregate(
        fewest=Min("credits")
    )["fewest"]


MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_named(value: str | None) -> datetime.date | None:
    """The first day of the month that "YYYY-MM" names (this month's when `value` is empty),
    or None when `value` names no month."""
    if not value:
        return timezone.now().date().replace(day=1)
    match = MONTH.match(value)
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 1 <= month <= 12 and 1 <= year <= 9998:
            return datetime.date(year, month, 1)
    return None


def month_bounds(month: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """The first instant of `month` and of the month after, in UTC."""
    start = datetime.datetime(month.year, month.month, 1, tzinfo=datetime.UTC)
    following = (start + datetime.timedelta(days=32)).replace(day=1)
    return start, following


def _money(value: Decimal | float | int | None) -> Decimal:
    return Decimal(str(value or 0)).quantize(PRECISION)


def _sum(queryset: object) -> Decimal:
    return _money(queryset.aggregate(total=Sum("amount"))["total"])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ProjectMoney:
    month: datetime.date
    cap_usd: Decimal | None  # None: the project has no budget (no cap)
    warning_threshold: Decimal | None
    spent_usd: Decimal  # charges and adjustments in the month
    reserved_usd: Decimal  # reservations not yet settled or released
    pending_usd: Decimal  # queued jobs that are not reserved yet

    @property
    def committed_usd(self) -> Decimal:
        return self.spent_usd + self.reserved_usd + self.pending_usd

    @property
    def remaining_usd(self) -> Decimal | None:
        return None if self.cap_usd is None else self.cap_usd - self.committed_usd

    @property
    def over_warning(self) -> bool:
        if self.cap_usd is None or self.warning_threshold is None or not self.cap_usd:
            return False
        return self.spent_usd + self.reserved_usd >= self.cap_usd * self.warning_threshold

    def can_accept(self, amount: Decimal) -> bool:
        """Whether a new job of `amount` fits beside everything spent, reserved and queued."""
        return self.cap_usd is None or self.committed_usd + amount <= self.cap_usd

    def can_reserve(self, amount: Decimal) -> bool:
        """Whether a queued job of `amount` may take its reservation now (first come, first
        served among the queued)."""
        return self.cap_usd is None or self.spent_usd + self.reserved_usd + amount <= self.cap_usd


def reserved_jobs_filter() -> Exists:
    """For a queryset of jobs: whether the job has its reservation."""
    return Exists(LedgerEntry.objects.filter(job=OuterRef("pk"), kind=EntryKind.RESERVE))


def _total(rows: QuerySet, field: str) -> Subquery:
    """The sum of `field` over `rows` (filtered on `OuterRef("pk")`, the project): one row per
    project, or none (NULL) when the project has no such rows."""
    return Subquery(
        rows.order_by().values("project").annotate(total=Sum(field)).values("total"),
        output_field=models.DecimalField(**MONEY),
    )


def projects_money(
    projects: Iterable[BilledProject], *, month: datetime.date | None = None
) -> dict[Any, ProjectMoney]:
    """Each project's money in `month` (this month by default), keyed by the project's id.

    One query whatever the number of projects: every total is a subquery of it, so a page of 50
    projects costs what one does. A project that is not in the database has no money (zeros).
    """
    month = (month or timezone.now().date()).replace(day=1)
    start, end = month_bounds(month)
    ids = [project.pk for project in projects]
    entries = LedgerEntry.objects.filter(project=OuterRef("pk"))
    jobs = job_model()._default_manager
    unreserved = jobs.filter(project=OuterRef("pk"), state=QUEUED).filter(~reserved_jobs_filter())
    rows = (
        project_model()
        ._default_manager.filter(pk__in=ids)
        .annotate(
            spent=_total(
                entries.filter(kind__in=SPENT_KINDS, created__gte=start, created__lt=end),
                "amount",
            ),
            reserves=_total(entries.filter(kind=EntryKind.RESERVE), "amount"),
            releases=_total(entries.filter(kind=EntryKind.RELEASE), "amount"),
            pending=_total(unreserved, "estimated_cost_usd"),
            cap=F("budget__monthly_cap_usd"),  # the reverse one-to-one: NULL without a budget
            warning=F("budget__warning_threshold"),
        )
        .order_by()
        .values("pk", "spent", "reserves", "releases", "pending", "cap", "warning")
    )
    found = {row["pk"]: row for row in rows}
    money = {}
    for pk in ids:
        row = found.get(pk, {})
        money[pk] = ProjectMoney(
            month=month,
            cap_usd=row.get("cap"),
            warning_threshold=row.get("warning"),
            spent_usd=_money(row.get("spent")),
            reserved_usd=_money(row.get("reserves")) - _money(row.get("releases")),
            pending_usd=_money(row.get("pending")),
        )
    return money


def project_money(project: BilledProject, *, month: datetime.date | None = None) -> ProjectMoney:
    """The project's money in `month` (this month by default); see `projects_money`."""
    return projects_money([project], month=month)[project.pk]


def project_has_ledger_entries(*, project: BilledProject) -> bool:
    return LedgerEntry.objects.filter(project_id=project.pk).exists()


def budget_get(*, project: BilledProject) -> Budget | None:
    """The project's budget; None when its spend has no cap."""
    return Budget.objects.filter(project_id=project.pk).first()


def job_charge_subquery() -> Subquery:
    """For annotating a queryset of jobs: the job's charge in USD, or None before it has one."""
    # A job is charged at most once (the ledger's constraint), so its charge is one row or none.
    return Subquery(
        LedgerEntry.objects.filter(job=OuterRef("pk"), kind=EntryKind.CHARGE).values("amount")[:1]
    )


def charged_usd(*, jobs: QuerySet) -> Decimal:
    """What these jobs were charged in all (charges and adjustments), whenever."""
    return _sum(LedgerEntry.objects.filter(job__in=jobs, kind__in=SPENT_KINDS))


def job_ledger_total(job: BilledJob) -> dict[str, Decimal]:
    """What the ledger holds for one job, by kind (absent kinds are zero)."""
    totals = {kind: _money(0) for kind in EntryKind.values}
    for row in (
        LedgerEntry.objects.filter(job_id=job.pk).values("kind").annotate(total=Sum("amount"))
    ):
        totals[row["kind"]] = _money(row["total"])
    return totals


@dataclass(frozen=True)
class SpendReport:
    project: BilledProject
    money: ProjectMoney
    charged_usd: Decimal  # charges of the month's clips, without operators' adjustments
    adjustments_usd: Decimal
    by_kind: list[dict[str, Any]]
    by_duration: list[dict[str, Any]]
    by_sound: list[dict[str, Any]]
    by_day: list[dict[str, Any]]


def spend_report(*, project: BilledProject, month: datetime.date) -> SpendReport:
    """What a project spent in a calendar month, and how: by kind, duration, sound and day.

    Breakdowns are of charges (each charge belongs to one clip); `money.spent_usd` also counts
    adjustments. Reservations are the project's current ones, whatever the month.
    """
    start, end = month_bounds(month)
    charges = LedgerEntry.objects.filter(
        project_id=project.pk, kind=EntryKind.CHARGE, created__gte=start, created__lt=end
    )
    adjustments = LedgerEntry.objects.filter(
        project_id=project.pk, kind=EntryKind.ADJUSTMENT, created__gte=start, created__lt=end
    )

    def grouped(field: str) -> list[dict[str, Any]]:
        rows = (
            charges.values(field)
            .annotate(charged_usd=Sum("amount"), jobs=Count("id"))
            .order_by(field)
        )
        return [
            {"value": row[field], "charged_usd": _money(row["charged_usd"]), "jobs": row["jobs"]}
            for row in rows
        ]

    by_day = (
        charges.annotate(day=TruncDate("created"))
        .values("day")
        .annotate(charged_usd=Sum("amount"), jobs=Count("id"))
        .order_by("day")
    )
    return SpendReport(
        project=project,
        money=project_money(project, month=month),
        charged_usd=_sum(charges),
        adjustments_usd=_sum(adjustments),
        by_kind=grouped("job__kind"),
        by_duration=grouped("job__duration"),
        by_sound=grouped("job__sound"),
        by_day=[
            {"date": row["day"], "charged_usd": _money(row["charged_usd"]), "jobs": row["jobs"]}
            for row in by_day
        ],
    )


def spend_by_day(*, project_ids: Iterable[int], month: datetime.date) -> list[dict[str, Any]]:
    """What the projects spent together on each day of `month` (charges and adjustments), as
    rows of {"date", "charged_usd"}; days without spend are absent."""
    start, end = month_bounds(month)
    rows = (
        LedgerEntry.objects.filter(
            project_id__in=list(project_ids),
            kind__in=SPENT_KINDS,
            created__gte=start,
            created__lt=end,
        )
        .annotate(day=TruncDate("created"))
        .values("day")
        .annotate(charged_usd=Sum("amount"))
        .order_by("day")
    )
    return [{"date": row["day"], "charged_usd": _money(row["charged_usd"])} for row in rows]


# --- The ledger as it is read by people ------------------------------------------------------


def ledger_totals(*, entries: QuerySet[LedgerEntry]) -> dict[str, Decimal]:
    """The sums of `entries` (any filtered ledger queryset) by kind, every kind present (zero
    when absent); "spent" is charges plus adjustments."""
    totals = {kind: _money(0) for kind in EntryKind.values}
    for row in entries.order_by().values("kind").annotate(total=Sum("amount")):
        totals[row["kind"]] = _money(row["total"])
    totals["spent"] = totals[EntryKind.CHARGE] + totals[EntryKind.ADJUSTMENT]
    return totals


def ledger_months(*, entries: QuerySet[LedgerEntry]) -> list[datetime.date]:
    """The calendar months (their first days, newest first) in which `entries` has rows."""
    # Months are UTC months, as budgets are (`month_bounds`).
    starts = entries.order_by().datetimes("created", "month", order="DESC", tzinfo=datetime.UTC)
    return [start.date() for start in starts]


LEDGER_CSV_COLUMNS = (
    "created",
    "project_id",
    "project",
    "job_id",
    "kind",
    "amount_usd",
    "note",
)


def ledger_month_rows(
    *, project_ids: Iterable[Any], month: datetime.date
) -> Iterator[tuple[Any, ...]]:
    """Every ledger entry of these projects in the calendar month of `month`, oldest first, as
    rows of `LEDGER_CSV_COLUMNS` (for a CSV export). Read in chunks: a month can be long."""
    start, end = month_bounds(month.replace(day=1))
    entries = (
        LedgerEntry.objects.filter(
            project__in=list(project_ids), created__gte=start, created__lt=end
        )
        .order_by("created", "id")
        .values_list("created", "project_id", "project__name", "job_id", "kind", "amount", "note")
    )
    for created, project_id, name, job_id, kind, amount, note in entries.iterator(chunk_size=2000):
        yield (
            created.isoformat(),
            project_id,
            name,
            str(job_id) if job_id else "",
            kind,
            f"{_money(amount)}",
            note,
        )
