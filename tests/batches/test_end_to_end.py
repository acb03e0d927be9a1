"""Batches end to end with the simulator as the provider: a 200-row CSV through the API, and
the `generate_batch` command with --yes --wait."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from billing.models import Budget, EntryKind, LedgerEntry
from tests.fixtures.data import make_member
from videos import services
from videos.models import Batch, GenerationJob, JobState, Role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def template(project):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("500"))
    prompt = services.prompt_create(
        project=project, title="Products", text="A {product} turns slowly on a plinth", by=None
    )
    return prompt.current_version


def test_a_200_row_csv_batch_runs_to_the_end(platform, template, project, settings):
    # The provider's own limit is what this batch meets; the platform's would pace it at
    # 20 every 10 s (tests/jobs cover that pacing).
    settings.PIPELINE = {**settings.PIPELINE, "RATE_LIMIT_TASKS": 1000, "MAX_IN_FLIGHT": 1000}
    erin = make_member("erin", project.team, Role.EDITOR)
    client = APIClient()
    client.force_authenticate(erin)
    csv_text = "product\n" + "".join(f"item {n}\n" for n in range(1, 201))
    upload = io.BytesIO(csv_text.encode())
    upload.name = "products.csv"
    response = client.post(
        "/api/v1/batches/",
        {"prompt_version": template.pk, "duration": 5, "file": upload},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    batch = Batch.objects.get()
    for job in batch.jobs.order_by("batch_row"):
        platform.wait_for(job, timeout=60)
    data = client.get(f"/api/v1/batches/{batch.pk}/").json()
    assert data["progress"] == {
        "rows": 200,
        "done": 200,
        "by_state": {"succeeded": 200},
        "spent_usd": "56.0000",  # 200 x $0.28
        "finished": True,
    }
    assert data["jobs"][41]["prompt"] == "A item 42 turns slowly on a plinth"
    charges = LedgerEntry.objects.filter(kind=EntryKind.CHARGE)
    assert charges.count() == 200 and sum(e.amount for e in charges) == Decimal("56.00")
    assert platform.simulator.stats()["create_task_calls"] == 200


def test_the_command_previews_queues_and_follows_a_batch(platform, template, project, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("product,sound\nteapot,no\nkettle,yes\ncup,\n")
    out = io.StringIO()
    call_command(
        "generate_batch",
        str(rows),
        "--project",
        str(project.pk),
        "--prompt-version",
        str(template.pk),
        "--yes",
        "--wait",
        stdout=out,
    )
    text = out.getvalue()
    assert "A teapot turns slowly on a plinth" in text and "$0.55" in text
    assert "Total: $1.11; the budget has $500.00 left this month." in text
    assert "Queued batch" in text
    assert "3/3" in text  # the progress bar, finished
    assert "Outcomes: 3 succeeded. Spent $1.11." in text
    assert GenerationJob.objects.filter(state=JobState.SUCCEEDED).count() == 3


def test_the_command_refuses_a_bad_csv_and_queues_nothing(platform, template, project, tmp_path):
    from django.core.management.base import CommandError

    rows = tmp_path / "rows.csv"
    rows.write_text("product,city\nteapot,Lyon\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was queued"):
        call_command(
            "generate_batch",
            str(rows),
            "--project",
            str(project.pk),
            "--prompt-version",
            str(template.pk),
            "--yes",
            stdout=out,
        )
    assert "(row 1, city): The prompt has no variable {city}." in out.getvalue()
    assert not GenerationJob.objects.exists()


def test_the_command_gives_a_kling_batch_its_negative_prompt_and_mode(
    platform, template, project, tmp_path
):
    from videos import services

    services.project_update(project=project, provider="kling")
    rows = tmp_path / "rows.csv"
    rows.write_text("product\nteapot\nkettle\n")
    call_command(
        "generate_batch",
        str(rows),
        "--project",
        str(project.pk),
        "--prompt-version",
        str(template.pk),
        "--negative-prompt",
        "no people",
        "--mode",
        "pro",
        "--yes",
        stdout=io.StringIO(),
    )
    jobs = GenerationJob.objects.all()
    assert {(job.negative_prompt, job.mode) for job in jobs} == {("no people", "pro")}
    assert jobs.count() == 2
