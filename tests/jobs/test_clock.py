"""The clock: each job's next step runs at its own time (a poll, a free slot, a retrieval's
retry, a lease run out), not at the next once-a-minute sweep; and two clocks hand a step over
once. Tasks run synchronously here, so a step handed over is done by the time `tick` returns."""

from __future__ import annotations

import datetime
import errno
import time
from typing import Any

from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from videos import jobs
from videos.jobs import clock, gate
from videos.models import GenerationJob, JobState, Kind, ProviderAccount

S = JobState


def create(project: Any) -> GenerationJob:
    return jobs.job_create(
        project=project, by=None, kind=Kind.TEXT_TO_VIDEO, prompt="A kite over the dunes"
    )


def later(seconds: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=seconds)


def test_a_job_whose_callback_is_lost_is_polled_at_its_own_time(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    platform.simulator.wait_for_stats(lambda s: s["callbacks_lost"] == 1)

    job.refresh_from_db()
    just_before = job.next_poll_at - datetime.timedelta(milliseconds=1)
    assert jobs.tick(now=just_before).polled == 0  # its poll is not due yet
    assert jobs.tick(now=job.next_poll_at).polled == 1
    platform.wait_for(job)


def test_a_poll_that_waited_for_a_worker_sets_its_next_one_from_when_it_ran(
    platform, project, settings
):
    # A next poll far enough off that a slow machine cannot reach it during the test.
    settings.PIPELINE = {**settings.PIPELINE, "POLL_INITIAL_SECONDS": 30, "POLL_MAX_SECONDS": 30}
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    platform.simulator.set_faults(server_error={"rate": 1, "endpoints": ["recordInfo"]})
    came_due = timezone.now() - datetime.timedelta(minutes=5)  # then it waited in the broker
    jobs.job_poll_by_id(job.pk, now=came_due)
    job.refresh_from_db()
    assert job.next_poll_at > timezone.now()  # not due again at the next tick
    assert jobs.tick().polled == 0


def test_a_job_held_by_the_rate_limit_goes_when_its_slot_opens(platform, project, settings):
    settings.PIPELINE = {
        **settings.PIPELINE,
        "RATE_LIMIT_TASKS": 2,
        "RATE_LIMIT_WINDOW_SECONDS": 3,  # wide enough for three creates on a slow machine
    }
    first, second, third = create(project), create(project), create(project)
    third.refresh_from_db()
    assert third.state == S.QUEUED
    assert "rate limit" in third.state_reason
    assert platform.simulator.stats()["create_task_calls"] == 2  # no hopeless attempt

    assert jobs.tick().submitted == 0  # the window has not ended
    accepted = first.events.get(to_state=S.SUBMITTED).created
    time.sleep((accepted + gate.rate_window() - timezone.now()).total_seconds() + 0.05)
    assert jobs.tick().submitted == 1
    for job in (first, second, third):
        platform.wait_for(job)
    assert platform.simulator.stats()["rejected"] == {}


def test_a_job_held_by_the_in_flight_cap_goes_when_a_task_ends(platform, project, settings):
    settings.PIPELINE = {**settings.PIPELINE, "MAX_IN_FLIGHT": 1}
    platform.simulator.set_faults(lost_callback=1)  # the first stays in flight until polled
    first, second = create(project), create(project)
    second.refresh_from_db()
    assert second.state == S.QUEUED and "in flight" in second.state_reason
    assert jobs.tick().submitted == 0  # the first is still at the provider

    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    platform.simulator.set_faults(lost_callback=0)
    jobs.jobs_poll_due(now=later(60))
    platform.wait_for(first)
    assert jobs.tick().submitted == 1
    platform.wait_for(second)


def test_a_job_the_provider_asked_to_wait_goes_when_its_back_off_ends(platform, project, settings):
    # Long enough that a slow machine still ticks once inside it.
    settings.PIPELINE = {
        **settings.PIPELINE,
        "SUBMIT_RETRY_INITIAL_SECONDS": 3,
        "SUBMIT_RETRY_MAX_SECONDS": 3,
    }
    platform.simulator.set_faults(forced_codes={"createTask": 429})
    job = create(project)
    job.refresh_from_db()
    assert job.state == S.QUEUED and job.submit_after is not None
    platform.simulator.set_faults(forced_codes={})

    assert jobs.tick().submitted == 0  # its back-off (3 s) has not ended
    time.sleep(max((job.submit_after - timezone.now()).total_seconds(), 0))
    assert jobs.tick().submitted == 1
    platform.wait_for(job)


def test_a_failed_retrieval_is_retried_after_seconds(platform, project, monkeypatch):
    real_save = FileSystemStorage._save

    def disk_full(self, name, content):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    job = create(project)
    platform.simulator.wait_for_stats(lambda s: s["callbacks_sent"] >= 1)
    job = platform.wait_for(job, [S.RETRIEVING])
    job.refresh_from_db()
    assert "No space left" in job.state_reason and job.retrieve_attempts == 1
    assert job.retrieve_after <= later(2.5)  # seconds, not the sweep's minutes

    monkeypatch.setattr(FileSystemStorage, "_save", real_save)  # the disk has room again
    assert jobs.tick(now=job.retrieve_after).retrieving == 1
    platform.wait_for(job)


def test_a_retrieval_whose_worker_died_is_taken_over_once_its_lease_runs_out(platform, project):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    # What a worker killed mid-download leaves: `retrieving`, its lease still running.
    status = platform.simulator.provider().get_task(job.provider_task_id)
    GenerationJob.objects.filter(pk=job.pk).update(
        state=S.RETRIEVING, result_url=status.result_urls[0], retrieve_after=later(30)
    )

    assert jobs.tick().retrieving == 0  # it may still be downloading
    assert jobs.tick(now=later(31)).retrieving == 1  # seconds later, not the sweep's minutes
    platform.wait_for(job)


def test_two_clocks_hand_each_step_over_once(platform, project, monkeypatch):
    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    handed: list[Any] = []
    monkeypatch.setattr(clock, "enqueue_poll", lambda job_id, as_of: handed.append(job_id))
    monkeypatch.setattr(clock, "enqueue_submit", handed.append)
    queued = GenerationJob.objects.create(
        team=project.team, project=project, kind=Kind.TEXT_TO_VIDEO, prompt_text="x"
    )

    due = later(5)
    first, second = jobs.tick(now=due), jobs.tick(now=due)
    assert (first.polled, second.polled) == (1, 0)
    assert (first.submitted, second.submitted) == (1, 0)
    assert sorted(map(str, handed)) == sorted([str(job.pk), str(queued.pk)])


def test_nothing_is_handed_over_while_the_workers_have_a_backlog(platform, project, monkeypatch):
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    platform.simulator.set_faults(lost_callback=1)
    job = platform.wait_for(create(project), [S.SUBMITTED, S.GENERATING])
    platform.simulator.wait_for_stats(lambda s: s["tasks_in_flight"] == 0)
    broker = get_broker()
    broker.purge_queue()
    monkeypatch.setattr(clock, "MAX_BACKLOG", 1)
    monkeypatch.setattr(Conf, "SYNC", False)  # tasks wait in the broker, as in a cluster
    broker.enqueue("a task no worker has taken yet")
    try:
        # Handed over now, the poll would wait past its lease and be handed over again.
        assert jobs.tick(now=later(5)).polled == 0
    finally:
        broker.purge_queue()
        monkeypatch.setattr(Conf, "SYNC", True)
    assert jobs.tick(now=later(5)).polled == 1
    platform.wait_for(job)


def test_submissions_paused_for_credits_go_again_at_the_first_tick_after_credits_return(
    platform, project, settings
):
    settings.PIPELINE = {**settings.PIPELINE, "CREDITS_RECHECK_SECONDS": 15}
    sim = platform.simulator
    sim.set_credits(10)  # less than any clip costs
    gate.pause("kie", code="402", reason="The provider account is out of credits.")
    job = create(project)
    job.refresh_from_db()
    assert job.state == S.QUEUED and "paused" in job.state_reason
    account = ProviderAccount.objects.filter(provider="kie")

    def balance_read_long_ago() -> int:
        account.update(credits_checked_at=timezone.now() - datetime.timedelta(seconds=16))
        return sim.stats()["requests"].get("credit", 0)

    reads = balance_read_long_ago()
    assert jobs.tick().credits_rechecks == 1  # read again (the task runs here): still short
    assert jobs.tick().credits_rechecks == 0  # and not read again at once
    assert sim.stats()["requests"]["credit"] == reads + 1
    assert account.get().is_paused

    sim.set_credits(100_000)
    balance_read_long_ago()
    assert jobs.tick().credits_rechecks == 1
    assert not account.get().is_paused
    platform.wait_for(job)


def test_queued_jobs_are_handed_over_no_faster_than_the_workers_take_them(
    platform, project, monkeypatch
):
    """A thousand queued jobs are not all put in the broker at once: a callback's task would
    wait behind them. Only what MAX_BACKLOG leaves room for goes."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    gate.pause("kie", code="maintenance", reason="Held while the jobs are made.")
    for _ in range(5):
        create(project)
    gate.resume("kie")
    handed: list[Any] = []
    monkeypatch.setattr(clock, "enqueue_submit", handed.append)
    monkeypatch.setattr(clock, "MAX_BACKLOG", 3)
    monkeypatch.setattr(Conf, "SYNC", False)  # tasks wait in the broker, as in a cluster
    broker = get_broker()
    broker.purge_queue()
    broker.enqueue("a task no worker has taken yet")
    try:
        assert clock.submissions_dispatch() == 2  # room for 3, and 1 waits already
    finally:
        broker.purge_queue()
    assert clock.submissions_dispatch() == 3  # the rest, once the workers took theirs
    assert len(handed) == 5


def test_two_clocks_hand_a_paused_accounts_balance_reading_over_once(
    platform, project, monkeypatch, settings
):
    settings.PIPELINE = {**settings.PIPELINE, "CREDITS_RECHECK_SECONDS": 15}
    gate.pause("kie", code="402", reason="The provider account is out of credits.")
    ProviderAccount.objects.filter(provider="kie").update(
        credits_checked_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    handed: list[str] = []
    monkeypatch.setattr(clock, "enqueue_credits_recheck", handed.append)

    due = later(1)
    assert (clock.credits_rechecks_dispatch(now=due), clock.credits_rechecks_dispatch(now=due)) == (
        1,
        0,
    )
    assert handed == ["kie"]
