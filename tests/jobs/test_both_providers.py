"""The pipeline end to end for each provider a project can choose: kie.ai and the official
Kling API, both served by the simulator over real HTTP, callbacks taken by the live server."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.models import EntryKind, LedgerEntry
from tests.fixtures.data import make_job
from tests.jobs.test_lifecycle import assert_ledger_balanced, create, later, png_upload
from videos import jobs
from videos.models import GenerationJob, JobState, Kind, Project

S = JobState


@pytest.fixture(params=["kie", "kling"])
def chosen(request: pytest.FixtureRequest, project: Project) -> Project:
    """The project, on each provider in turn."""
    project.provider = request.param
    project.save(update_fields=["provider"])
    return project


def make_stale(job: GenerationJob) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(
        updated=timezone.now() - datetime.timedelta(hours=1)
    )


def test_text_to_video_ends_stored_and_charged(platform, chosen):
    job = platform.wait_for(create(chosen, duration=5, sound=True, aspect_ratio="9:16"))
    assert job.provider == chosen.provider
    assert job.asset.height > job.asset.width
    assert job.asset.has_audio is True
    assert_ledger_balanced(job, charged=Decimal("0.5500"))


def test_image_to_video_keeps_the_image_shape(platform, chosen):
    job = platform.wait_for(
        create(chosen, kind=Kind.IMAGE_TO_VIDEO, image=png_upload(320, 240), sound=False)
    )
    assert job.asset.width > job.asset.height
    # kie.ai fetches an uploaded copy; Kling takes the image inline.
    assert bool(job.source_image_url) is (chosen.provider == "kie")


def test_a_lost_callback_is_made_good_by_polling(platform, chosen):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(chosen), [S.SUBMITTED, S.GENERATING])
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    assert jobs.jobs_poll_due(now=later(5)) == 1
    platform.wait_for(job)
    assert_ledger_balanced(job, charged=Decimal("0.2800"))


def test_duplicated_callbacks_charge_once(platform, chosen):
    platform.simulator.set_faults(duplicate_callback=1)
    job = platform.wait_for(create(chosen))
    platform.simulator.wait_for_stats(lambda s: s["callbacks_sent"] >= 2)
    assert LedgerEntry.objects.filter(job=job, kind=EntryKind.CHARGE).count() == 1


def test_an_early_callback_adopts_the_task_id(platform, chosen):
    platform.simulator.set_faults(early_callback=1)
    job = platform.wait_for(create(chosen))
    stats = platform.simulator.stats()
    assert stats["create_task_calls"] == 1
    assert job.provider_task_id == stats["recent_callbacks"][0]["taskId"]


def test_generation_failure_fails_the_job_and_releases(platform, chosen):
    platform.simulator.set_faults(generation_failure=1)
    job = platform.wait_for(create(chosen), [S.FAILED])
    assert "failed" in job.state_reason.lower()
    assert_ledger_balanced(job, charged=Decimal("0"))


def test_server_errors_put_the_job_back_then_it_goes(platform, chosen):
    platform.simulator.set_faults(server_error={"rate": 1, "times": 1, "endpoints": ["createTask"]})
    job = create(chosen)
    job.refresh_from_db()
    assert job.state == S.QUEUED
    GenerationJob.objects.filter(pk=job.pk).update(submit_after=None)
    jobs.sweep()
    platform.wait_for(job)
    assert platform.simulator.stats()["create_task_calls"] == 2


def test_a_refused_request_fails_the_job(platform, chosen):
    platform.simulator.set_faults(forced_codes={"createTask": 422})
    job = platform.wait_for(create(chosen), [S.FAILED])
    assert job.provider_error_code == {"kie": "422", "kling": "1201"}[chosen.provider]
    assert_ledger_balanced(job, charged=Decimal("0"))


def test_a_lost_create_answer_needs_attention_or_is_found_by_reference(platform, chosen):
    """The provider made the task but its answer never came back. kie.ai cannot be asked which
    task it was, so a person decides; Kling is asked by the job's id, and the job goes on."""
    platform.simulator.set_faults(disconnect={"rate": 1, "times": 1, "endpoints": ["createTask"]})
    job = create(chosen)
    job.refresh_from_db()
    assert platform.simulator.stats()["tasks_created"] == 1
    if chosen.provider == "kie":
        assert job.state == S.NEEDS_ATTENTION
        return
    assert job.state == S.SUBMITTING
    assert "reference" in job.state_reason
    make_stale(job)
    counts = jobs.sweep()
    assert counts["submissions_recovered"] == 1
    platform.wait_for(job)
    assert platform.simulator.stats()["create_task_calls"] == 1  # never sent twice
    assert job.events.filter(reason__startswith="Found task").exists()
    assert_ledger_balanced(job, charged=Decimal("0.2800"))


def test_a_worker_that_died_before_sending_leaves_a_job_that_is_resent_or_needs_attention(
    platform, chosen
):
    job = make_job(chosen, state=S.SUBMITTING, provider=chosen.provider)
    make_stale(job)
    jobs.sweep()
    job.refresh_from_db()
    if chosen.provider == "kie":
        assert job.state == S.NEEDS_ATTENTION
        with pytest.raises(ValidationError):
            jobs.job_retry(job=job)
        return
    # Kling has no task with this job's id: it never arrived, so sending it is safe.
    platform.wait_for(job)
    assert platform.simulator.stats()["create_task_calls"] == 1
    assert job.events.filter(reason__contains="never reached it").exists()


def test_options_only_the_kling_api_takes(platform, chosen):
    options = {"negative_prompt": "blur, text", "mode": "pro"}
    if chosen.provider == "kie":
        with pytest.raises(ValidationError) as refused:
            create(chosen, **options)
        assert "kie.ai takes no negative prompt" in str(refused.value)
        assert "kie.ai takes no mode" in str(refused.value)
        return
    job = platform.wait_for(create(chosen, **options))
    assert (job.negative_prompt, job.mode) == ("blur, text", "pro")


def test_an_expired_token_is_made_again_and_the_job_goes_on(platform, project):
    # kie.ai takes a fixed API key: only Kling's token can expire.
    chosen = project
    chosen.provider = "kling"
    chosen.save(update_fields=["provider"])
    platform.simulator.set_faults(expired_token={"rate": 1, "times": 1})
    job = platform.wait_for(create(chosen))
    stats = platform.simulator.stats()
    assert stats["faults"]["expired_token"] == 1
    assert stats["create_task_calls"] == 2  # refused unread, sent again with a new token
    assert stats["tasks_created"] == 1
    assert job.state == S.SUCCEEDED
