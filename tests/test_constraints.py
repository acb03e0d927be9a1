"""The data rules the database itself enforces, whatever client writes to it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from billing.models import Budget, EntryKind, LedgerEntry, Price
from config.append_only import AppendOnlyError
from tests.fixtures.data import make_job
from videos.models import JobEvent, JobState, Kind, Prompt, PromptVersion

pytestmark = pytest.mark.django_db


def test_idempotency_key_is_unique_within_a_team(project):
    make_job(project, idempotency_key="order-17")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_job(project, idempotency_key="order-17")


def test_idempotency_key_may_repeat_across_teams_and_be_absent(project, other_project):
    make_job(project, idempotency_key="order-17")
    make_job(other_project, idempotency_key="order-17")
    make_job(project)
    make_job(project)
    assert project.jobs.filter(idempotency_key__isnull=True).count() == 2


def test_provider_task_id_belongs_to_one_job(project):
    make_job(project, provider_task_id="task_kling-2.6_1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_job(project, provider_task_id="task_kling-2.6_1")


@pytest.mark.parametrize(
    "field, value",
    [
        ("state", "exploded"),
        ("kind", "audio_to_video"),
        ("duration", 7),
        ("aspect_ratio", "4:3"),
        ("estimated_cost_usd", Decimal("-1")),
    ],
)
def test_job_enums_and_amounts_are_checked_by_the_database(project, field, value):
    job = make_job(project)
    with pytest.raises(IntegrityError), transaction.atomic():
        type(job).objects.filter(pk=job.pk).update(**{field: value})


def test_image_to_video_needs_an_image(project):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_job(project, kind=Kind.IMAGE_TO_VIDEO)
    job = make_job(project, kind=Kind.IMAGE_TO_VIDEO, source_image_url="https://example.com/a.png")
    assert job.kind == Kind.IMAGE_TO_VIDEO


def test_price_list_is_seeded_with_the_kling_26_prices(db):
    def seeded(provider: str) -> dict[tuple[int, bool], tuple[Decimal, int]]:
        rows = Price.objects.filter(model="kling-2.6", provider=provider)
        return {(p.duration, p.sound): (p.usd, p.credits) for p in rows}

    assert seeded("kie") == {
        (5, False): (Decimal("0.28"), 55),
        (10, False): (Decimal("0.55"), 110),
        (5, True): (Decimal("0.55"), 110),
        (10, True): (Decimal("1.10"), 220),
    }
    # The official Kling API reports no credits; its dollar figures are placeholders to edit.
    assert seeded("kling") == {key: (usd, 0) for key, (usd, _) in seeded("kie").items()}


def test_budget_threshold_must_be_a_fraction(project, other_project):
    with pytest.raises(IntegrityError), transaction.atomic():
        Budget.objects.create(
            project=other_project, monthly_cap_usd=Decimal("5"), warning_threshold=Decimal("1.5")
        )


def _raw(sql: str, params: list[Any]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_ledger_entries_are_never_updated_or_deleted(project):
    entry = LedgerEntry.objects.create(project=project, kind=EntryKind.CHARGE, amount=Decimal("1"))

    entry.amount = Decimal("0")
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("0"))
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.all().delete()
    # Below the ORM, the database refuses too.
    with pytest.raises(DatabaseError):
        _raw("UPDATE billing_ledgerentry SET amount = 0 WHERE id = %s", [entry.pk])
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError):
            _raw("DELETE FROM billing_ledgerentry WHERE id = %s", [entry.pk])

    entry.refresh_from_db()
    assert entry.amount == Decimal("1")


def test_ledger_amounts_are_positive_except_adjustments(project):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(project=project, kind=EntryKind.CHARGE, amount=Decimal("-1"))
    refund = LedgerEntry.objects.create(
        project=project, kind=EntryKind.ADJUSTMENT, amount=Decimal("-0.28"), note="refund"
    )
    assert refund.amount == Decimal("-0.28")


def test_a_job_is_charged_at_most_once(project):
    job = make_job(project)
    LedgerEntry.objects.create(project=project, job=job, kind=EntryKind.CHARGE, amount=Decimal("1"))
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            project=project, job=job, kind=EntryKind.CHARGE, amount=Decimal("1")
        )


def test_job_events_are_append_only(project):
    job = make_job(project)
    event = JobEvent.objects.create(job=job, from_state="", to_state=JobState.QUEUED)
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        JobEvent.objects.filter(job=job).update(reason="rewritten")
    with pytest.raises(DatabaseError):
        _raw("UPDATE videos_jobevent SET reason = 'x' WHERE id = %s", [event.pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        JobEvent.objects.create(job=job, from_state="", to_state="vanished")


def test_prompt_versions_are_append_only(project):
    prompt = Prompt.objects.create(project=project, title="Fox")
    version = PromptVersion.objects.create(prompt=prompt, number=1, text="A fox")
    with pytest.raises(AppendOnlyError):
        PromptVersion.objects.filter(pk=version.pk).update(text="A wolf")
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersion.objects.create(prompt=prompt, number=1, text="A wolf")
