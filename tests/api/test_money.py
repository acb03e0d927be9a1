"""Estimates (no side effects) and the monthly spend report."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Budget, EntryKind, LedgerEntry
from tests.api.conftest import errors
from tests.fixtures.data import make_job
from videos.models import GenerationJob, Kind

pytestmark = pytest.mark.django_db


def test_an_estimate_prices_a_job_and_saves_nothing(vic_api, job_body):
    response = vic_api.post("/api/v1/estimate/", {**job_body, "duration": 10, "sound": True})

    assert response.status_code == 200
    assert response.json() == {
        "estimated_cost_usd": "1.1000",
        "jobs": ["1.1000"],
        "within_budget": True,
        "budget_message": "",
        # The balance was never read: nothing is refused for it.
        "provider_credits_left": None,
        "provider_credits_checked_at": None,
        "credits_queued": 0,
        "credits_needed": 220,
        "within_balance": True,
        "balance_message": "",
    }
    assert not GenerationJob.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_an_estimate_of_a_batch_says_when_the_budget_would_refuse(alice_api, project, job_body):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.60"))

    response = alice_api.post("/api/v1/estimate/", {"jobs": [job_body, job_body, job_body]})

    body = response.json()
    assert response.status_code == 200
    assert body["estimated_cost_usd"] == "0.8400"
    assert body["within_budget"] is False
    assert body["budget_message"].startswith("Job 2:")
    assert not GenerationJob.objects.exists()


def test_an_estimate_validates_like_a_job(alice_api, job_body):
    assert (
        alice_api.post("/api/v1/estimate/", {**job_body, "prompt": "x" * 1001}).status_code == 400
    )
    response = alice_api.post(
        "/api/v1/estimate/", {"jobs": [job_body, {**job_body, "kind": "gif"}]}
    )
    assert response.status_code == 400
    assert "jobs.1.kind" in errors(response)


def test_the_spend_report_breaks_a_month_down(alice_api, project):
    text = make_job(project, duration=5, sound=False)
    loud = make_job(project, duration=10, sound=True)
    image = make_job(project, kind=Kind.IMAGE_TO_VIDEO, source_image_url="https://x.example/a.png")
    LedgerEntry.objects.create(
        project=project, job=text, kind=EntryKind.CHARGE, amount=Decimal("0.28")
    )
    LedgerEntry.objects.create(
        project=project, job=loud, kind=EntryKind.CHARGE, amount=Decimal("1.10")
    )
    LedgerEntry.objects.create(
        project=project, job=image, kind=EntryKind.CHARGE, amount=Decimal("0.28")
    )
    LedgerEntry.objects.create(project=project, kind=EntryKind.ADJUSTMENT, amount=Decimal("-0.10"))
    waiting = make_job(project, estimated_cost_usd=Decimal("0.55"))
    LedgerEntry.objects.create(
        project=project, job=waiting, kind=EntryKind.RESERVE, amount=Decimal("0.55")
    )

    month = timezone.now().strftime("%Y-%m")
    body = alice_api.get(f"/api/v1/spend/?project={project.pk}&month={month}").json()

    assert body["month"] == month
    assert (body["charged_usd"], body["adjustments_usd"], body["spent_usd"]) == (
        "1.6600",
        "-0.1000",
        "1.5600",
    )
    assert body["reserved_usd"] == "0.5500"
    assert body["monthly_budget_usd"] == "10.0000"
    assert {row["kind"]: row["charged_usd"] for row in body["by_kind"]} == {
        "image_to_video": "0.2800",
        "text_to_video": "1.3800",
    }
    assert {row["duration"]: (row["charged_usd"], row["jobs"]) for row in body["by_duration"]} == {
        5: ("0.5600", 2),
        10: ("1.1000", 1),
    }
    assert {row["sound"]: row["charged_usd"] for row in body["by_sound"]} == {
        False: "0.5600",
        True: "1.1000",
    }
    assert body["by_day"] == [
        {"date": timezone.now().date().isoformat(), "charged_usd": "1.6600", "jobs": 3}
    ]


def test_another_month_is_empty(alice_api, project):
    job = make_job(project)
    LedgerEntry.objects.create(
        project=project, job=job, kind=EntryKind.CHARGE, amount=Decimal("0.28")
    )
    body = alice_api.get(f"/api/v1/spend/?project={project.pk}&month=2020-01").json()
    assert (body["charged_usd"], body["by_day"]) == ("0.0000", [])


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("project=abc", 400),
        ("project=1&month=2026-13", 400),
        ("project=1&month=26-01", 400),
        ("project=1&month=0000-01", 400),
        ("project=999999", 404),
    ],
)
def test_bad_spend_queries(alice_api, project, query, status):
    assert alice_api.get(f"/api/v1/spend/?{query}").status_code == status


def test_another_teams_spend_is_not_found(alice_api, other_project):
    assert alice_api.get(f"/api/v1/spend/?project={other_project.pk}").status_code == 404


def test_a_batch_estimate_reads_each_projects_money_once(alice_api, job_body):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(count: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            answer = alice_api.post("/api/v1/estimate/", {"jobs": [job_body] * count})
        assert answer.status_code == 200
        return len(captured)

    queries(1)  # the first request of a user also gives them their own team
    one, fifty = queries(1), queries(50)
    # Each job costs its project lookup and its price; the budget is read once for the batch.
    assert fifty - one <= 2 * 49
