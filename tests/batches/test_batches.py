"""Batches: every row checked and priced before anything is queued, then all or none."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.models import Budget
from videos import batches, services
from videos.batches import BatchInvalid, RowError, batch_create, batch_plan, rows_from_csv
from videos.jobs import BudgetExceeded, CreditsShort, gate
from videos.models import Batch, GenerationJob, JobState, Kind

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(project, alice):
    prompt = services.prompt_create(
        project=project, title="Cities", text="A {product} on a café table in {city}", by=alice
    )
    return prompt.current_version


def test_a_plan_prices_every_row_and_renders_its_prompt(template):
    plan = batch_plan(
        prompt_version=template,
        rows=[
            {"product": "teapot", "city": "Lyon"},
            {"product": "kettle", "city": "Oslo", "duration": "10", "sound": "yes"},
        ],
        duration=5,
    )
    assert plan.can_queue and plan.errors == []
    assert [row.prompt for row in plan.rows] == [
        "A teapot on a café table in Lyon",
        "A kettle on a café table in Oslo",
    ]
    assert [row.price_usd for row in plan.rows] == [Decimal("0.28"), Decimal("1.10")]
    assert plan.total_usd == Decimal("1.38")
    assert plan.variables == ["product", "city"]


def test_rows_set_a_negative_prompt_and_a_mode_where_the_provider_takes_them(template):
    rows = [
        {"product": "teapot", "city": "Oslo", "negative_prompt": "no text", "mode": "pro"},
        {"product": "kettle", "city": "Rome"},
    ]
    plan = batch_plan(prompt_version=template, rows=rows)
    assert {(error.row, error.column) for error in plan.errors} == {
        (1, "negative_prompt"),
        (1, "mode"),
    }
    assert "kie.ai takes no negative prompt" in plan.errors[0].message

    template.prompt.project.provider = "kling"
    template.prompt.project.save(update_fields=["provider"])
    template.prompt.project.refresh_from_db()
    template.refresh_from_db()
    plan = batch_plan(prompt_version=template, rows=rows)
    assert plan.can_queue, plan.errors
    first, second = (row.spec for row in plan.rows)
    assert first is not None and second is not None
    assert (first.negative_prompt, first.mode) == ("no text", "pro")
    assert (second.negative_prompt, second.mode) == ("", "")


def test_a_shared_negative_prompt_and_mode_apply_to_rows_that_set_none(template, alice):
    shared = {"negative_prompt": "no people", "mode": "pro"}
    rows = [
        {"product": "teapot", "city": "Oslo", "negative_prompt": "no text", "mode": "std"},
        {"product": "kettle", "city": "Rome"},
    ]
    refused = batch_plan(prompt_version=template, rows=rows, **shared)
    assert {(error.row, error.column) for error in refused.errors} == {
        (row, column) for row in (1, 2) for column in ("negative_prompt", "mode")
    }  # kie.ai takes neither, shared or not

    project = template.prompt.project
    project.provider = "kling"
    project.save(update_fields=["provider"])
    template.refresh_from_db()
    batch = batch_create(by=alice, prompt_version=template, rows=rows, **shared)
    assert (batch.negative_prompt, batch.mode) == ("no people", "pro")
    jobs = batch.jobs.order_by("batch_row")
    assert [(job.negative_prompt, job.mode) for job in jobs] == [
        ("no text", "std"),
        ("no people", "pro"),
    ]


def test_every_rows_errors_name_the_row_and_the_column(template):
    plan = batch_plan(
        prompt_version=template,
        rows=[
            {"product": "teapot"},  # no city
            {"product": "kettle", "city": "Oslo", "colour": "red"},  # a column nothing uses
            {"product": "cup", "city": "Rome", "duration": "7"},
            {"product": "cup", "city": "Rome", "duration": "ten"},
            {"product": "cup", "city": "Rome", "sound": "maybe"},
            {"product": "cup", "city": "Rome", "aspect_ratio": "4:3"},
            {"product": "x" * 1000, "city": "Rome"},
            {"product": "cup", "city": "Rome", "image_url": "http://127.0.0.1/a.png"},
            {"product": "cup", "city": "Rome", "image": "missing.png"},
        ],
    )
    assert not plan.can_queue
    by_row = {(error.row, error.column) for error in plan.errors}
    assert by_row == {
        (1, "city"),
        (2, "colour"),
        (3, "duration"),
        (4, "duration"),
        (5, "sound"),
        (6, "aspect_ratio"),
        (7, "prompt"),
        (8, "image_url"),
        (9, "image"),
    }
    messages = {error.row: error.message for error in plan.errors}
    assert messages[1] == "No value for {city}."
    assert messages[2] == "The prompt has no variable {colour}."
    assert "private" in messages[8] or "public" in messages[8]


def test_an_invalid_row_queues_nothing(template):
    with pytest.raises(BatchInvalid) as error:
        batch_create(
            by=None,
            prompt_version=template,
            rows=[{"product": "teapot", "city": "Lyon"}, {"product": "kettle"}],
        )
    assert error.value.plan.errors == [RowError(2, "city", "No value for {city}.")]
    assert not GenerationJob.objects.exists() and not Batch.objects.exists()


def test_a_batch_over_the_budget_is_refused_whole(template, project):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("1.00"))
    rows = [{"product": f"item {n}", "city": "Lyon"} for n in range(4)]  # 4 x $0.28
    plan = batch_plan(prompt_version=template, rows=rows, duration=5)
    assert "cannot cover these 4 jobs ($1.12): $1.00 of $1.00 is left" in plan.budget_refusal
    with pytest.raises(BudgetExceeded):
        batch_create(by=None, prompt_version=template, rows=rows, duration=5)
    assert not GenerationJob.objects.exists() and not Batch.objects.exists()


def test_a_batch_the_balance_cannot_pay_is_refused_unless_it_may_wait(template):
    gate.account_for("kie")
    gate.ProviderAccount.objects.update(
        credits_left=Decimal("100"), credits_checked_at=timezone.now()
    )
    rows = [{"product": f"item {n}", "city": "Lyon"} for n in range(10)]  # 10 x 55 credits
    assert "credits" in batch_plan(prompt_version=template, rows=rows).balance_refusal
    with pytest.raises(CreditsShort):
        batch_create(by=None, prompt_version=template, rows=rows)
    assert not GenerationJob.objects.exists()
    batch = batch_create(by=None, prompt_version=template, rows=rows, wait_for_credits=True)
    assert batch.jobs.count() == 10


def test_a_batch_queues_a_job_per_row_with_its_variables(template, alice):
    batch = batch_create(
        by=alice,
        prompt_version=template,
        rows=[{"product": "teapot", "city": "Lyon"}, {"product": "kettle", "city": "Oslo"}],
        duration=10,
        aspect_ratio="9:16",
        sound=True,
    )
    jobs = batches.batch_jobs(batch)
    assert [(job.batch_row, job.prompt_text) for job in jobs] == [
        (1, "A teapot on a café table in Lyon"),
        (2, "A kettle on a café table in Oslo"),
    ]
    assert all(
        (job.state, job.kind, job.duration, job.aspect_ratio, job.sound, job.prompt_version)
        == (JobState.QUEUED, Kind.TEXT_TO_VIDEO, 10, "9:16", True, template)
        for job in jobs
    )
    assert jobs[0].prompt_variables == {"product": "teapot", "city": "Lyon"}
    progress = batches.batch_progress(batch)
    assert (progress.rows, progress.done, progress.by_state) == (2, 0, {"queued": 2})


def test_cancel_remaining_and_retry_failed_act_on_each_rows_newest_job(template):
    batch = batch_create(
        by=None,
        prompt_version=template,
        rows=[{"product": "a", "city": "Lyon"}, {"product": "b", "city": "Oslo"}],
    )
    first, second = batches.batch_jobs(batch)
    GenerationJob.objects.filter(pk=first.pk).update(state=JobState.FAILED)
    assert batches.batch_cancel_remaining(batch=batch, by=None) == 1  # the queued one
    retried, refusal = batches.batch_retry_failed(batch=batch, by=None)
    assert refusal == "" and len(retried) == 1
    new = retried[0]
    assert (new.batch_id, new.batch_row, new.prompt_text) == (batch.pk, 1, first.prompt_text)
    assert [job.pk for job in batches.batch_jobs(batch)] == [new.pk, second.pk]


def test_a_csv_becomes_rows_and_a_bad_one_says_why():
    text = "product,city\nteapot,Lyon\n\n kettle , Oslo \n"
    assert rows_from_csv(text.encode()) == [
        {"product": "teapot", "city": "Lyon"},
        {"product": "kettle", "city": "Oslo"},
    ]
    assert rows_from_csv("\ufeffproduct\ncup\n".encode()) == [{"product": "cup"}]
    for data, message in [
        (b"", "header row"),
        (b"a,a\n1,2\n", "its own name"),
        (b"a,b\n1,2,3\n", "Line 2 has more cells"),
        ("a\n\u00e9\n".encode("latin-1"), "UTF-8"),
    ]:
        with pytest.raises(ValidationError, match=message):
            rows_from_csv(data)


def test_a_prompt_with_a_malformed_placeholder_cannot_be_saved(project):
    with pytest.raises(ValidationError, match="is not a variable"):
        services.prompt_create(project=project, title="Bad", text="A {product.name}", by=None)
