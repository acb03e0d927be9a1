"""A job's whole life over real HTTP: the simulator renders, the live server takes callbacks.

django-q2 runs in sync mode here (tasks run where they are enqueued); `test_worker.py` runs the
same flow with a real `qcluster` process.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import socket
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from billing import services as billing
from billing.models import Budget, EntryKind, LedgerEntry
from billing.selectors import job_ledger_total, project_money
from tests.fixtures.data import make_job
from videos import jobs
from videos.jobs.states import Party
from videos.models import GenerationJob, JobState, Kind, ProviderAccount

S = JobState


def create(project, **fields) -> GenerationJob:
    values: dict[str, Any] = {
        "kind": Kind.TEXT_TO_VIDEO,
        "prompt": "A paper boat on a rainy street",
    }
    values.update(fields)
    return jobs.job_create(project=project, by=None, **values)


def png_upload(width: int = 320, height: int = 240) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buffer, format="PNG")
    return SimpleUploadedFile("boat.png", buffer.getvalue(), content_type="image/png")


def later(seconds: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=seconds)


def assert_ledger_balanced(job: GenerationJob, *, charged: Decimal, reserved: bool = True) -> None:
    """The job's ledger says it cost `charged`, and no reservation is left behind."""
    totals = job_ledger_total(job)
    assert totals[EntryKind.CHARGE] == charged
    assert totals[EntryKind.RESERVE] == (job.estimated_cost_usd if reserved else Decimal("0"))
    assert totals[EntryKind.RELEASE] == totals[EntryKind.RESERVE]


def test_text_to_video_ends_stored_probed_and_charged(platform, project):
    job = platform.wait_for(create(project, duration=5, sound=True, aspect_ratio="9:16"))

    asset = job.asset
    data = asset.file.read()
    assert hashlib.sha256(data).hexdigest() == asset.sha256
    assert len(data) == asset.size_bytes
    assert asset.duration_s == pytest.approx(5, abs=0.5)
    assert asset.height > asset.width  # 9:16
    assert asset.has_audio is True
    assert asset.fps > 0
    assert asset.poster.read()[:3] == b"\xff\xd8\xff"  # a JPEG

    # 110 credits reported for a 5 s clip with sound, at $0.55 / 110 credits.
    assert job.provider_credits == Decimal("110")
    assert_ledger_balanced(job, charged=Decimal("0.5500"))
    states = [e.to_state for e in job.events.all()]
    assert states[:3] == [S.QUEUED, S.SUBMITTING, S.SUBMITTED]
    assert states[-2:] == [S.RETRIEVING, S.SUCCEEDED]


def test_image_to_video_uploads_the_image_and_keeps_its_shape(platform, project):
    job = platform.wait_for(
        create(project, kind=Kind.IMAGE_TO_VIDEO, image=png_upload(320, 240), sound=False)
    )
    assert job.source_image_url.startswith(platform.simulator.base_url)
    assert job.asset.width > job.asset.height
    assert job.asset.has_audio is False
    assert_ledger_balanced(job, charged=Decimal("0.2800"))


def test_unsigned_callbacks_are_confirmed_with_record_info(platform, project, settings):
    settings.KIE_WEBHOOK_HMAC_KEY = None
    job = platform.wait_for(create(project))
    assert job.asset.size_bytes > 0
    stats = platform.simulator.stats()
    assert stats["requests"]["recordInfo"] >= 1


def test_a_forged_callback_changes_nothing(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    body = {
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": job.provider_task_id,
            "state": "success",
            "resultJson": '{"resultUrls": ["https://evil.example/x.mp4"]}',
        },
    }
    wrong_token = f"{platform.url}/callbacks/kie/{job.pk}/not-the-token/"
    assert requests.post(wrong_token, json=body, timeout=5).status_code == 404
    unsigned = f"{platform.url}{job.callback_path}"
    assert requests.post(unsigned, json=body, timeout=5).status_code == 401  # no signature
    too_big = requests.post(unsigned, data=b"x" * (300 * 1024), timeout=5)
    assert too_big.status_code == 413
    job.refresh_from_db()
    assert job.state in (S.SUBMITTED, S.GENERATING)
    assert not LedgerEntry.objects.filter(job=job, kind=EntryKind.CHARGE).exists()


def test_rate_limited_submission_waits_for_the_hint_then_goes(platform, project):
    # A hint long enough that a slow machine still sweeps inside it.
    platform.simulator.set_faults(rate_limit=1, rate_window=60, retry_after=5)
    first = create(project)
    second = create(project)
    second.refresh_from_db()
    assert second.state == S.QUEUED
    assert "429" in second.state_reason or "rate" in second.state_reason.lower()
    assert second.submit_after - timezone.now() <= datetime.timedelta(seconds=5)  # the hint

    platform.simulator.set_faults(rate_limit=None)
    jobs.sweep()  # too early: the hint has not passed
    assert platform.simulator.stats()["create_task_calls"] == 2
    jobs.job_submit(second.pk, now=second.submit_after + datetime.timedelta(seconds=0.05))
    platform.wait_for(first)
    platform.wait_for(second)
    assert platform.simulator.stats()["create_task_calls"] == 3


def test_server_errors_put_the_job_back_with_backoff(platform, project):
    platform.simulator.set_faults(server_error={"rate": 1, "times": 2, "endpoints": ["createTask"]})
    job = create(project)
    job.refresh_from_db()
    assert job.state == S.QUEUED
    assert job.submit_attempts == 1
    first_wait = job.submit_after

    GenerationJob.objects.filter(pk=job.pk).update(submit_after=None)
    before = timezone.now()
    jobs.sweep()
    job.refresh_from_db()
    assert job.submit_attempts == 2
    assert job.submit_after - before > datetime.timedelta(seconds=1)  # grew
    assert first_wait is not None

    GenerationJob.objects.filter(pk=job.pk).update(submit_after=None)
    jobs.sweep()
    platform.wait_for(job)
    assert platform.simulator.stats()["create_task_calls"] == 3


def test_a_lost_callback_is_made_good_by_polling(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    job.refresh_from_db()
    just_before = job.next_poll_at - datetime.timedelta(milliseconds=1)
    assert jobs.jobs_poll_due(now=just_before) == 0  # not overdue yet
    assert jobs.jobs_poll_due(now=later(5)) == 1
    platform.wait_for(job)
    assert_ledger_balanced(job, charged=Decimal("0.2800"))


def test_duplicated_callbacks_charge_once(platform, project):
    platform.simulator.set_faults(duplicate_callback=1)
    job = platform.wait_for(create(project))
    platform.simulator.wait_for_stats(lambda s: s["callbacks_sent"] >= 2)
    assert LedgerEntry.objects.filter(job=job, kind=EntryKind.CHARGE).count() == 1
    assert job.events.filter(to_state=S.SUCCEEDED).count() == 1


def test_an_early_callback_adopts_the_task_id(platform, project):
    platform.simulator.set_faults(early_callback=1)
    job = platform.wait_for(create(project))
    stats = platform.simulator.stats()
    assert stats["faults"]["early_callback"] == 1
    assert stats["create_task_calls"] == 1
    assert job.provider_task_id == stats["recent_callbacks"][0]["taskId"]
    assert job.events.filter(reason__startswith="Adopted task").exists()


def test_generation_failure_fails_the_job_and_releases(platform, project):
    platform.simulator.set_faults(generation_failure=1)
    job = platform.wait_for(create(project), [S.FAILED])
    assert job.provider_error_code
    assert "failed" in job.state_reason.lower()
    assert_ledger_balanced(job, charged=Decimal("0"))
    assert project_money(project).reserved_usd == Decimal("0")


def test_out_of_credits_pauses_submissions_until_credits_return(platform, project, client):
    platform.simulator.set_credits(0)
    job = create(project)
    job.refresh_from_db()
    assert job.state == S.QUEUED
    assert "credits" in job.state_reason
    assert platform.simulator.stats()["create_task_calls"] == 0  # nothing sent that can't be paid
    assert client.get("/healthz/").json() == {"status": "degraded"}
    client.force_login(get_user_model().objects.create_superuser("root", password="root-pw-1"))
    assert "kie" in client.get("/ops/status/").json()["submissions_paused"]

    jobs.sweep()
    assert job.__class__.objects.get(pk=job.pk).state == S.QUEUED  # still no credits

    platform.simulator.set_credits(10_000)
    jobs.sweep()
    platform.wait_for(job)
    assert client.get("/healthz/").json()["status"] == "ok"


def test_a_402_from_create_task_pauses_everything(platform, project):
    platform.simulator.set_faults(out_of_credits=True)
    first = create(project)
    second = create(project)
    assert ProviderAccount.objects.get(provider="kie").pause_code == "402"
    assert platform.simulator.stats()["create_task_calls"] == 1  # the second was held, not sent
    for job in (first, second):
        job.refresh_from_db()
        assert job.state == S.QUEUED and "paused" in job.state_reason

    platform.simulator.set_faults(out_of_credits=False)
    jobs.sweep()  # the balance can pay again: resumes by itself
    platform.wait_for(first)
    platform.wait_for(second)


def test_validation_refused_by_the_provider_fails_and_releases(platform, project):
    platform.simulator.set_faults(forced_codes={"createTask": 422})
    job = platform.wait_for(create(project), [S.FAILED])
    assert job.provider_error_code == "422"
    assert_ledger_balanced(job, charged=Decimal("0"))


def test_a_job_past_its_deadline_fails_with_a_reason(platform, project):
    platform.simulator.set_faults(lost_callback=1, forced_codes={"recordInfo": 500})
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    jobs.jobs_poll_due(now=later(5))
    job.refresh_from_db()
    assert job.state == S.SUBMITTED  # a failed poll before the deadline just tries again

    jobs.jobs_poll_due(now=later(16 * 60))
    job.refresh_from_db()
    assert job.state == S.FAILED
    assert "15 minutes" in job.state_reason
    assert_ledger_balanced(job, charged=Decimal("0"))


def test_cancel_before_submission_releases_everything(platform, project):
    jobs.submissions_pause("kie", code="manual", reason="maintenance window")
    job = create(project)
    assert jobs.job_cancel(job=job) is True
    job.refresh_from_db()
    assert job.state == S.CANCELED
    assert_ledger_balanced(job, charged=Decimal("0"), reserved=False)
    assert project_money(project).committed_usd == Decimal("0")
    assert platform.simulator.stats()["create_task_calls"] == 0
    assert jobs.job_cancel(job=job) is False


def test_a_clip_that_arrives_after_cancel_is_kept_and_charged(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    assert jobs.job_cancel(job=job) is True
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)

    jobs.jobs_poll_due(now=later(5))
    job.refresh_from_db()
    assert job.state == S.CANCELED
    assert job.asset.size_bytes > 0
    assert_ledger_balanced(job, charged=Decimal("0.2800"))
    jobs.jobs_poll_due(now=later(60))  # nothing more to do
    assert LedgerEntry.objects.filter(job=job, kind=EntryKind.CHARGE).count() == 1


def test_retry_makes_a_new_attempt_with_its_own_history(platform, project):
    platform.simulator.set_faults(generation_failure={"rate": 1, "times": 1})
    failed = platform.wait_for(create(project), [S.FAILED])
    retry = platform.wait_for(jobs.job_retry(job=failed))
    assert retry.retry_of == failed
    assert retry.attempt == 2
    assert retry.events.first().to_state == S.QUEUED
    assert failed.events.last().to_state == S.FAILED


def test_a_stale_submission_needs_attention_and_is_never_resent(platform, project):
    job = make_job(project, state=S.SUBMITTING)
    GenerationJob.objects.filter(pk=job.pk).update(
        updated=timezone.now() - datetime.timedelta(hours=1)
    )
    counts = jobs.sweep()
    job.refresh_from_db()
    assert counts["submissions_recovered"] == 1
    assert job.state == S.NEEDS_ATTENTION
    assert platform.simulator.stats()["create_task_calls"] == 0

    with pytest.raises(ValidationError):
        jobs.job_retry(job=job)  # it may be paid for already: a person decides first
    assert jobs.job_give_up(job=job) is True
    job.refresh_from_db()
    assert job.state == S.FAILED
    assert_ledger_balanced(job, charged=Decimal("0"), reserved=False)
    assert jobs.job_give_up(job=job) is False


def test_an_interrupted_retrieval_is_retried_by_the_sweep(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    status = platform.simulator.provider().get_task(job.provider_task_id)
    # As if a worker died mid-download: the job says retrieving, and nothing was stored.
    jobs.transition(
        job,
        to=S.RETRIEVING,
        party=Party.PROVIDER,
        allowed_from=[S.SUBMITTED, S.GENERATING],
        result_url=status.result_urls[0],
        next_poll_at=None,
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        updated=timezone.now() - datetime.timedelta(hours=1)
    )
    assert jobs.sweep()["retrieving"] == 1
    platform.wait_for(job)


def test_an_expired_result_link_is_renewed(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    status = platform.simulator.provider().get_task(job.provider_task_id)
    good = status.result_urls[0]
    expired = good.replace(good.split("/")[-2], "expired-token")
    assert requests.get(expired, timeout=5).status_code == 404
    jobs.transition(
        job,
        to=S.RETRIEVING,
        party=Party.PROVIDER,
        allowed_from=[S.SUBMITTED, S.GENERATING],
        result_url=expired,
        next_poll_at=None,
    )
    jobs.job_retrieve(job.pk)
    platform.wait_for(job)


def test_the_shared_rate_limit_holds_jobs_back(platform, project, settings):
    settings.PIPELINE = {
        **settings.PIPELINE,
        "RATE_LIMIT_TASKS": 2,
        "RATE_LIMIT_WINDOW_SECONDS": 60,
    }
    created = [create(project) for _ in range(3)]
    assert platform.simulator.stats()["create_task_calls"] == 2
    created[2].refresh_from_db()
    assert created[2].state == S.QUEUED
    assert "rate limit" in created[2].state_reason


def test_the_in_flight_cap_holds_jobs_back(platform, project, settings):
    settings.PIPELINE = {**settings.PIPELINE, "MAX_IN_FLIGHT": 1}
    platform.simulator.set_faults(lost_callback=1)
    first = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    second = create(project)
    second.refresh_from_db()
    assert second.state == S.QUEUED
    assert "in flight" in second.state_reason
    assert first.provider_task_id


def test_budget_refuses_at_the_door(platform, project):
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.50"))
    create(project)  # $0.28
    with pytest.raises(jobs.BudgetExceeded, match="cannot cover"):
        create(project)


def test_a_job_over_a_lowered_budget_waits_at_submit_until_it_is_raised(platform, project):
    jobs.submissions_pause("kie", code="manual", reason="night")
    job = create(project)
    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("0.10"))
    jobs.submissions_resume("kie")
    job.refresh_from_db()
    assert job.state == S.QUEUED
    assert job.state_reason.startswith("Waiting for budget")
    assert not LedgerEntry.objects.filter(job=job).exists()
    assert platform.simulator.stats()["create_task_calls"] == 0

    Budget.objects.filter(project=project).update(monthly_cap_usd=Decimal("10"))
    GenerationJob.objects.filter(pk=job.pk).update(submit_after=None)
    jobs.sweep()
    platform.wait_for(job)
    assert_ledger_balanced(job, charged=Decimal("0.2800"))


def test_a_cancel_between_reading_and_reserving_leaves_no_reservation(platform, project):
    jobs.submissions_pause("kie", code="manual", reason="night")
    job = create(project)
    seen_by_worker = GenerationJob.objects.get(pk=job.pk)  # read while still queued
    assert jobs.job_cancel(job=job)
    assert billing.budget_reserve(job=seen_by_worker) is True
    assert not LedgerEntry.objects.filter(job=job).exists()


def test_a_result_that_cannot_be_stored_needs_attention_and_keeps_its_money(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}/clip.mp4"
    jobs.transition(
        job,
        to=S.RETRIEVING,
        party=Party.PROVIDER,
        allowed_from=[S.SUBMITTED, S.GENERATING],
        result_url=dead_url,
        next_poll_at=None,
    )

    jobs.job_retrieve(job.pk)
    job.refresh_from_db()
    assert job.state == S.RETRIEVING  # tries again later
    jobs.job_retrieve(job.pk, now=later(2 * 3600))
    job.refresh_from_db()
    assert job.state == S.NEEDS_ATTENTION
    assert job_ledger_total(job)[EntryKind.RESERVE] == job.estimated_cost_usd
    assert job_ledger_total(job)[EntryKind.RELEASE] == Decimal("0")

    assert jobs.job_give_up(job=job)  # the provider finished it, so it was paid for
    assert_ledger_balanced(job, charged=Decimal("0.28"))


def test_a_clip_that_arrives_after_the_deadline_still_succeeds(platform, project):
    platform.simulator.set_faults(lost_callback=1, forced_codes={"recordInfo": 500})
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    jobs.jobs_poll_due(now=later(16 * 60))
    job.refresh_from_db()
    assert job.state == S.FAILED

    platform.simulator.set_faults(forced_codes={})
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    jobs.job_apply_status(job, platform.simulator.provider().get_task(job.provider_task_id))
    job = platform.wait_for(job)
    assert job.asset.size_bytes > 0
    assert_ledger_balanced(job, charged=Decimal("0.28"))


def test_one_broken_job_does_not_stop_the_sweep(platform, project, monkeypatch):
    platform.simulator.set_faults(lost_callback=1)
    healthy = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    broken = make_job(project, state=S.SUBMITTED, provider_task_id="task-of-nobody")
    GenerationJob.objects.filter(pk=broken.pk).update(
        next_poll_at=timezone.now(), submitted_at=None
    )
    GenerationJob.objects.filter(pk=healthy.pk).update(next_poll_at=timezone.now())
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)

    real_poll = jobs.job_poll

    def poll(job, **kwargs):
        if job.pk == broken.pk:
            raise RuntimeError("storage is on fire")
        return real_poll(job, **kwargs)

    monkeypatch.setattr("videos.jobs.outcome.job_poll", poll)
    assert jobs.sweep(now=later(5))["polled"] == 2
    platform.wait_for(healthy)


def test_results_can_be_stored_on_s3(platform, project, settings, s3_server):
    bucket = s3_server.new_bucket()
    s3_server.use_for_storage(settings, bucket)

    job = platform.wait_for(create(project))
    stored = s3_server.client().get_object(Bucket=bucket, Key=job.asset.file.name)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == job.asset.sha256
    assert (
        s3_server.client().head_object(Bucket=bucket, Key=job.asset.poster.name)["ContentLength"]
        > 0
    )
