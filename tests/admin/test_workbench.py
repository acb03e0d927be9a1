"""The editors' workbench: the job list and its actions, prompts with their diffs and "Generate
clips", projects' money, the ledger with its totals and CSV, and the index's provider status.
Here as an editor (erin) and an owner (olive) of team Alpha (see conftest)."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Budget, EntryKind, LedgerEntry
from tests.admin.pages import form_data, page_text
from tests.fixtures.data import make_job
from videos import jobs, services
from videos.jobs import operator
from videos.models import GenerationJob, JobState, ProviderAccount
from videos.providers.base import TaskState, TaskStatus

pytestmark = pytest.mark.django_db
JOBS = reverse("admin:videos_generationjob_changelist")
PROMPTS = reverse("admin:videos_prompt_changelist")
LEDGER = reverse("admin:billing_ledgerentry_changelist")


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def act(client: Client, changelist: str, action: str, objs: list[Any], **extra: Any) -> Any:
    return client.post(
        changelist,
        {"action": action, "_selected_action": [o.pk for o in objs], **extra},
        follow=True,
    )


# --- Jobs ------------------------------------------------------------------------------------


def test_the_job_list_shows_badge_money_age_and_poster(world):
    second = world.alpha.project.__class__.objects.create(team=world.alpha.team, name="Second")
    make_job(second, state=JobState.FAILED, provider_error_code="501")
    page = client_for(world.erin).get(JOBS)
    text = page_text(page)
    assert 'class="job-state job-state-failed"' in text
    assert "$0.55" in text  # its charge
    assert "ago" in text
    assert f'src="/files/jobs/{world.alpha.asset.job_id}/poster/"' in text
    titles = [spec.title for spec in page.context["cl"].filter_specs]
    assert {"state", "kind", "project", "created", "provider error code"} <= set(titles)


def test_the_job_page_plays_the_clip_and_shows_the_image_through_checked_views(world):
    job = world.alpha.job
    job.source_image.save("still.png", ContentFile(b"\x89PNG\r\n\x1a\n"))
    erin = client_for(world.erin)
    page = erin.get(reverse("admin:videos_generationjob_change", args=[job.pk])).content.decode()

    clip, poster, image = (
        reverse(name, args=[job.pk]) for name in ("job-clip", "job-poster", "job-source-image")
    )
    assert f'<video src="{clip}" poster="{poster}"' in page
    assert f'src="{image}"' in page
    assert "/media/" not in page
    assert erin.get(clip, HTTP_RANGE="bytes=0-2").status_code == 206
    assert client_for(world.bob).get(clip).status_code == 404  # another team's editor


def test_jobs_are_filtered_by_provider_error_code(world):
    failed = make_job(world.alpha.project, state=JobState.FAILED, provider_error_code="501")
    page = client_for(world.erin).get(JOBS, {"error_code": "501"})
    assert list(page.context["cl"].result_list) == [failed]


def test_retry_retrieval_asks_then_retrieves(world, monkeypatch):
    started: list[Any] = []
    monkeypatch.setattr(operator, "enqueue_retrieve", started.append)
    job = make_job(
        world.alpha.project, state=JobState.NEEDS_ATTENTION, result_url="https://r.example/c.mp4"
    )
    erin = client_for(world.erin)

    page = act(erin, JOBS, "retry_retrieval", [job])
    assert "Its clip is downloaded again, with a new deadline." in page_text(page)
    job.refresh_from_db()
    assert job.state == JobState.NEEDS_ATTENTION

    page = act(erin, JOBS, "retry_retrieval", [job], post="yes")
    job.refresh_from_db()
    assert job.state == JobState.RETRIEVING
    assert "retrieving its clip again" in page_text(page)


def test_resolve_adopts_a_task_or_confirms_it_was_never_accepted(world, monkeypatch):
    found = make_job(world.alpha.project, state=JobState.NEEDS_ATTENTION)
    lost = make_job(world.alpha.project, state=JobState.NEEDS_ATTENTION)

    class Provider:
        def get_task(self, task_id: str, *, kind: str | None = None) -> TaskStatus:
            return TaskStatus(task_id=task_id, state=TaskState.WAITING)

    monkeypatch.setattr(operator, "get_provider", lambda name="kie": Provider())
    erin = client_for(world.erin)

    page = act(erin, JOBS, "resolve_needs_attention", [found, lost])
    assert f'name="task-{found.pk}"' in page_text(page)
    page = act(
        erin,
        JOBS,
        "resolve_needs_attention",
        [found, lost],
        post="yes",
        **{
            f"resolve-{found.pk}": "adopt",
            f"task-{found.pk}": "task-found",
            f"resolve-{lost.pk}": "not_accepted",
        },
    )

    assert "Resolved 2 of 2 jobs that need attention." in page_text(page)
    found.refresh_from_db()
    lost.refresh_from_db()
    assert (found.state, found.provider_task_id) == (JobState.SUBMITTED, "task-found")
    assert (lost.state, lost.provider_error_code) == (JobState.FAILED, "not_accepted")


def test_retry_shows_the_estimate_and_makes_a_new_attempt(world):
    erin = client_for(world.erin)
    page = act(erin, JOBS, "retry_jobs", [world.alpha.job])
    assert "A new attempt, estimated $0.55" in page_text(page)
    act(erin, JOBS, "retry_jobs", [world.alpha.job], post="yes")
    [retry] = world.alpha.job.retries.all()
    assert (retry.state, retry.attempt) == (JobState.QUEUED, 2)


# --- Prompts ---------------------------------------------------------------------------------


def test_prompt_versions_show_what_changed(world):
    prompt = world.alpha.prompt
    services.prompt_update(prompt=prompt, by=world.erin, text="A alpha fox walks through snow")
    page = client_for(world.erin).get(reverse("admin:videos_prompt_change", args=[prompt.pk]))
    text = page_text(page)
    assert "<del>runs</del><ins>walks</ins>" in text
    assert "(first version)" in text


def test_generate_clips_shows_the_estimate_against_budgets_and_balance_then_queues(world):
    ProviderAccount.objects.create(provider="kie", credits_left=Decimal(1000))
    second = services.prompt_create(
        project=world.alpha.project, title="Heron", text="A heron lifts off a lake", by=world.erin
    )
    erin = client_for(world.erin)
    prompts = [world.alpha.prompt, second]

    page = act(
        erin,
        PROMPTS,
        "generate_clips",
        prompts,
        options="1",
        duration="10",
        aspect_ratio="9:16",
        sound="yes",
    )

    text = page_text(page)
    plan = page.context["plan"]
    assert [spec.duration for spec in plan["specs"]] == [10, 10]
    assert plan["total_usd"] == Decimal("2.20")
    # Alpha's $50 cap less the $0.55 already charged.
    assert "$49.45" in text and "fits" in text
    assert "1000 credits as last seen" in text and "these clips need 440" in text
    assert not GenerationJob.objects.filter(created_by=world.erin).exists()

    page = act(
        erin,
        PROMPTS,
        "generate_clips",
        prompts,
        options="1",
        duration="10",
        aspect_ratio="9:16",
        sound="yes",
        post="yes",
    )

    assert "Queued 2 clips (estimated $2.20)." in page_text(page)
    queued = GenerationJob.objects.filter(created_by=world.erin)
    assert {(j.duration, j.aspect_ratio, j.sound, j.state) for j in queued} == {
        (10, "9:16", True, JobState.QUEUED)
    }
    assert {j.prompt_version for j in queued} == {p.current_version for p in prompts}


def test_generate_clips_passes_negative_prompt_and_mode_to_a_kling_project_only(world):
    ProviderAccount.objects.create(provider="kie", credits_left=Decimal(1000))
    kling = services.project_create(
        team=world.alpha.team, name="On Kling", provider="kling", monthly_budget_usd=Decimal(20)
    )
    on_kling = services.prompt_create(
        project=kling, title="Heron", text="A heron lifts off a lake", by=world.erin
    )
    erin = client_for(world.erin)
    options = {"options": "1", "negative_prompt": "no text on screen", "mode": "pro"}

    page = act(erin, PROMPTS, "generate_clips", [world.alpha.prompt, on_kling], **options)
    text = page_text(page)
    assert "takes no negative prompt" in text and "takes no mode" in text  # the kie.ai prompt
    assert 'id="confirm"' not in text

    act(erin, PROMPTS, "generate_clips", [on_kling], **options, post="yes")
    job = GenerationJob.objects.get(created_by=world.erin)
    assert (job.project, job.negative_prompt, job.mode) == (kling, "no text on screen", "pro")


def test_generate_clips_over_budget_or_balance_queues_nothing(world):
    Budget.objects.filter(project=world.alpha.project).update(monthly_cap_usd=Decimal("1.00"))
    ProviderAccount.objects.create(provider="kie", credits_left=Decimal(10))
    erin = client_for(world.erin)

    page = act(
        erin,
        PROMPTS,
        "generate_clips",
        [world.alpha.prompt],
        options="1",
        duration="10",
        sound="yes",
        post="yes",
    )

    text = page_text(page)
    assert "The project&#x27;s monthly budget cannot cover this $1.10 clip" in text
    assert "The provider account has 10.0000 credits left" in text
    assert 'id="confirm"' not in text
    assert not GenerationJob.objects.filter(created_by=world.erin).exists()


# --- Projects and the ledger -----------------------------------------------------------------


def test_projects_show_this_months_money(world):
    project = world.alpha.project
    make_job(project, estimated_cost_usd=Decimal("0.30"))  # queued, not reserved yet
    LedgerEntry.objects.create(project=project, kind=EntryKind.RESERVE, amount=Decimal("1.10"))
    erin = client_for(world.erin)

    page = erin.get(reverse("admin:videos_project_changelist"))
    text = page_text(page)
    assert "$0.55" in text  # charged
    assert "$1.10 (+$0.30 queued)" in text
    assert "$48.05 of $50.00" in text

    page = erin.get(reverse("admin:videos_project_change", args=[project.pk]))
    month = timezone.now().date()
    assert (
        f"{month:%B %Y}: charged $0.55; reserved $1.10; queued $0.30; $48.05 left of $50.00"
        in page_text(page)
    )


def test_a_project_past_its_warning_threshold_has_its_money_left_highlighted(world):
    project = world.alpha.project  # $0.55 charged of a $50.00 cap
    Budget.objects.filter(project=project).update(warning_threshold=Decimal("0.80"))
    erin = client_for(world.erin)
    projects = reverse("admin:videos_project_changelist")
    highlight = '<strong style="color:#b45309">'

    assert highlight not in erin.get(projects).content.decode()

    # Charged plus reserved reaches 80% of the cap: $0.55 + $39.45 = $40.00.
    LedgerEntry.objects.create(project=project, kind=EntryKind.RESERVE, amount=Decimal("39.45"))
    html = erin.get(projects).content.decode()
    assert f"{highlight}$10.00 of $50.00</strong>" in html


def test_the_ledger_totals_what_is_listed_and_filters_by_month(world, monkeypatch):
    project = world.alpha.project
    earlier = timezone.now() - datetime.timedelta(days=70)
    with monkeypatch.context() as patch:  # the ledger is append-only: written in the past
        patch.setattr(timezone, "now", lambda: earlier)
        LedgerEntry.objects.create(
            project=project, kind=EntryKind.ADJUSTMENT, amount=Decimal("-0.20")
        )
    erin = client_for(world.erin)

    page = erin.get(LEDGER)
    totals = dict(page.context["ledger_totals"])
    assert totals["Charge"] == Decimal("0.55") and totals["Adjustment"] == Decimal("-0.20")
    months = next(spec for spec in page.context["cl"].filter_specs if spec.title == "month")
    this_month = f"{timezone.now():%Y-%m}"
    assert next(value for value, _ in months.lookup_choices) == this_month

    page = erin.get(LEDGER, {"month": this_month})
    assert dict(page.context["ledger_totals"])["Adjustment"] == Decimal("0")
    assert list(page.context["cl"].result_list) == [world.alpha.entry]


def test_a_month_of_the_ledger_downloads_as_csv_with_only_the_users_projects(world):
    erin = client_for(world.erin)
    page = erin.get(LEDGER)
    export = page.context["export_url"]
    assert f"month={timezone.now():%Y-%m}" in export

    response = erin.get(export)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["created", "project_id", "project", "job_id", "kind", "amount_usd", "note"]
    assert [row[2:] for row in rows[1:]] == [
        ["alpha project", str(world.alpha.job.pk), "charge", "0.5500", "alpha charge"]
    ]
    beta = erin.get(reverse("admin:billing_ledgerentry_export"), {"project": world.beta.project.pk})
    assert len(list(csv.reader(io.StringIO(b"".join(beta.streaming_content).decode())))) == 1


# --- The index -------------------------------------------------------------------------------


def test_the_index_shows_a_pause_and_its_reason_and_the_credits(world):
    ProviderAccount.objects.create(
        provider="kie", credits_left=Decimal(120), credits_checked_at=timezone.now()
    )
    jobs.submissions_pause("kie", code="402", reason="The account has no credits left.")
    make_job(world.alpha.project, state=JobState.NEEDS_ATTENTION)

    page = client_for(world.vic).get(reverse("admin:index"))

    text = page_text(page)
    assert "Paused" in text and "The account has no credits left." in text and "code 402" in text
    assert "120" in text
    counts = {row["state"]: row["jobs"] for row in page.context["jobs_by_state"]}
    assert counts[JobState.NEEDS_ATTENTION] == 1


def test_the_owner_project_form_keeps_its_budget_fields(world):
    data = form_data(
        client_for(world.olive).get(
            reverse("admin:videos_project_change", args=[world.alpha.project.pk])
        )
    )
    assert data["monthly_cap_usd"] == "50.0000"


def test_the_csv_keeps_a_formula_like_project_name_as_text(world):
    project = world.alpha.project
    project.__class__.objects.filter(pk=project.pk).update(name="=1+1")
    response = client_for(world.erin).get(reverse("admin:billing_ledgerentry_export"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][2] == "'=1+1" and rows[1][5] == "0.5500"
