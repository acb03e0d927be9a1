"""Money: prices, reservations against the monthly cap, settling and releasing."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services as billing
from billing.models import Budget, EntryKind, LedgerEntry, Price
from billing.selectors import (
    PriceMissing,
    ProjectMoney,
    cheapest_credits,
    job_ledger_total,
    price_for,
    project_money,
    projects_money,
)
from tests.fixtures.data import make_job
from videos.models import GenerationJob, JobState, Project

pytestmark = pytest.mark.django_db


def test_the_newest_price_in_force_applies(db):
    Price.objects.create(
        duration=5,
        sound=False,
        usd=Decimal("0.30"),
        credits=60,
        effective_from=datetime.date(2099, 1, 1),
    )
    assert price_for(duration=5, sound=False).usd == Decimal("0.28")
    assert price_for(duration=5, sound=False, on=datetime.date(2099, 2, 1)).usd == Decimal("0.30")
    with pytest.raises(PriceMissing):
        price_for(duration=5, sound=False, on=datetime.date(2000, 1, 1))


def test_reserve_takes_from_the_cap_and_refuses_what_does_not_fit(project):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("1.00"))
    first = make_job(project, estimated_cost_usd=Decimal("0.55"))
    second = make_job(project, estimated_cost_usd=Decimal("0.55"))

    assert billing.budget_reserve(job=first) is True
    assert billing.budget_reserve(job=first) is True  # once only
    assert billing.budget_reserve(job=second) is False

    money = project_money(project)
    assert money.reserved_usd == Decimal("0.55")
    assert money.pending_usd == Decimal("0.55")  # the second waits, queued and unreserved
    assert LedgerEntry.objects.filter(job=first, kind=EntryKind.RESERVE).count() == 1


def test_settle_charges_the_reported_credits_at_the_list_rate_once(project):
    job = make_job(project, estimated_cost_usd=Decimal("0.55"), duration=5, sound=True)
    billing.budget_reserve(job=job)

    assert billing.job_settle(job=job, credits=Decimal("55")) == billing.Settlement(
        Decimal("0.2750"), created=True, discrepancy=""
    )
    # A duplicate changes nothing, whatever it claims.
    assert billing.job_settle(job=job, credits=Decimal("110")) == billing.Settlement(
        Decimal("0.2750"), created=False, discrepancy=""
    )

    totals = job_ledger_total(job)
    assert totals[EntryKind.CHARGE] == Decimal("0.2750")
    assert totals[EntryKind.RESERVE] == totals[EntryKind.RELEASE] == Decimal("0.55")
    money = project_money(project)
    assert (money.spent_usd, money.reserved_usd) == (Decimal("0.2750"), Decimal("0"))


def test_settle_without_reported_credits_charges_the_list_price(project):
    job = make_job(project, duration=10, sound=True, estimated_cost_usd=Decimal("1.10"))
    assert billing.job_settle(job=job, credits=None).charged_usd == Decimal("1.10")


def test_release_gives_back_only_what_was_reserved(project):
    unreserved = make_job(project)
    billing.job_release(job=unreserved, note="failed")
    assert not LedgerEntry.objects.filter(job=unreserved).exists()

    job = make_job(project, estimated_cost_usd=Decimal("0.28"))
    billing.budget_reserve(job=job)
    billing.job_release(job=job, note="failed")
    billing.job_release(job=job, note="failed again")
    assert job_ledger_total(job)[EntryKind.RELEASE] == Decimal("0.28")


def test_spend_is_counted_in_the_month_it_happened(project):
    job = make_job(project, state=JobState.SUCCEEDED)
    billing.job_settle(job=job, credits=None)
    this_month = project_money(project)
    next_month = project_money(project, month=this_month.month + datetime.timedelta(days=40))
    assert this_month.spent_usd == Decimal("0.28")
    assert next_month.spent_usd == Decimal("0")


def test_warning_threshold(project):
    Budget.objects.filter(project=project).update(
        monthly_cap_usd=Decimal("1.00"), warning_threshold=Decimal("0.50")
    )
    job = make_job(project, estimated_cost_usd=Decimal("0.55"))
    assert not project_money(project).over_warning
    billing.budget_reserve(job=job)
    assert project_money(project).over_warning


def test_the_cheapest_clip_in_credits(db):
    assert cheapest_credits(provider="kie") == 55
    assert cheapest_credits(provider="kie", on=datetime.date(2000, 1, 1)) is None
    assert cheapest_credits(provider="other") is None


def _entry(project: Project, kind: str, amount: str, job: GenerationJob | None = None) -> None:
    LedgerEntry.objects.create(project=project, job=job, kind=kind, amount=Decimal(amount))


def test_the_money_of_many_projects_is_each_ones_money(
    project, team, monkeypatch, django_assert_num_queries
):
    """One query for all of them, with the same figures as asking project by project."""
    now = timezone.now()
    last_month = (now.replace(day=1) - datetime.timedelta(days=1)).replace(day=15)
    launch = project  # a $10 cap
    with monkeypatch.context() as earlier:  # what the ledger wrote last month
        earlier.setattr(timezone, "now", lambda: last_month)
        _entry(launch, EntryKind.CHARGE, "1.10", make_job(launch, state=JobState.SUCCEEDED))
        _entry(launch, EntryKind.ADJUSTMENT, "0.20")
        late = make_job(launch, state=JobState.GENERATING, estimated_cost_usd=Decimal("0.28"))
        _entry(launch, EntryKind.RESERVE, "0.28", late)  # still open: counted whatever the month
    _entry(launch, EntryKind.CHARGE, "0.55", make_job(launch, state=JobState.SUCCEEDED))
    _entry(launch, EntryKind.ADJUSTMENT, "-0.10")
    in_flight = make_job(launch, state=JobState.SUBMITTED, estimated_cost_usd=Decimal("0.28"))
    _entry(launch, EntryKind.RESERVE, "0.28", in_flight)
    failed = make_job(launch, state=JobState.FAILED, estimated_cost_usd=Decimal("0.55"))
    _entry(launch, EntryKind.RESERVE, "0.55", failed)
    _entry(launch, EntryKind.RELEASE, "0.55", failed)
    reserved = make_job(launch, estimated_cost_usd=Decimal("0.55"))  # queued, reserved
    _entry(launch, EntryKind.RESERVE, "0.55", reserved)
    make_job(launch, estimated_cost_usd=Decimal("0.28"))  # queued, waiting for its reservation
    make_job(launch, estimated_cost_usd=Decimal("1.10"))
    make_job(launch, state=JobState.CANCELED, estimated_cost_usd=Decimal("0.55"))

    uncapped = Project.objects.create(team=team, name="Uncapped")
    _entry(uncapped, EntryKind.CHARGE, "0.28", make_job(uncapped, state=JobState.SUCCEEDED))
    make_job(uncapped, estimated_cost_usd=Decimal("0.55"))
    idle = Project.objects.create(team=team, name="Idle")
    billing.budget_set(project=idle, monthly_cap_usd=Decimal("5"), warning_threshold=Decimal("0.5"))
    projects = [launch, uncapped, idle]

    def money(month: datetime.date, cap: str | None, warn: str | None, *usd: str) -> ProjectMoney:
        spent, reserved, pending = (Decimal(value) for value in usd)
        return ProjectMoney(
            month=month,
            cap_usd=Decimal(cap) if cap else None,
            warning_threshold=Decimal(warn) if warn else None,
            spent_usd=spent,
            reserved_usd=reserved,
            pending_usd=pending,
        )

    this, previous = now.date().replace(day=1), last_month.date().replace(day=1)
    with django_assert_num_queries(1):
        projects_money(projects)
    assert (
        projects_money(projects)
        == {
            launch.pk: money(this, "10", "0.80", "0.45", "1.11", "1.38"),
            uncapped.pk: money(this, None, None, "0.28", "0", "0.55"),
            idle.pk: money(this, "5", "0.5", "0", "0", "0"),
        }
        == {p.pk: project_money(p) for p in projects}
    )
    assert (
        projects_money(projects, month=previous)
        == {
            launch.pk: money(previous, "10", "0.80", "1.30", "1.11", "1.38"),
            uncapped.pk: money(previous, None, None, "0", "0", "0.55"),
            idle.pk: money(previous, "5", "0.5", "0", "0", "0"),
        }
        == {p.pk: project_money(p, month=previous) for p in projects}
    )
