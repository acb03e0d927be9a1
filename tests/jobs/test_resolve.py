"""What a person decides for a job the pipeline could not: retry a download that failed, adopt
the task an operator found at the provider, or confirm the provider never accepted it. Each is
a move of the state machine made by a person."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.models import EntryKind, LedgerEntry
from tests.fixtures.data import make_job
from videos.jobs import job_adopt_task, job_confirm_not_accepted, job_retrieval_retry, operator
from videos.models import GenerationJob, JobState
from videos.providers.base import Action, ProviderError, TaskState, TaskStatus

S = JobState
pytestmark = pytest.mark.django_db
RESULT = "https://results.example/clip.mp4"


@pytest.fixture
def retrievals(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    started: list[Any] = []
    monkeypatch.setattr(operator, "enqueue_retrieve", started.append)
    return started


class FakeProvider:
    def __init__(self, answer: TaskStatus | Exception) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def get_task(self, task_id: str, *, kind: str | None = None) -> TaskStatus:
        self.asked.append(task_id)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch):
    def use(answer: TaskStatus | Exception) -> FakeProvider:
        fake = FakeProvider(answer)
        monkeypatch.setattr(operator, "get_provider", lambda name="kie": fake)
        return fake

    return use


def unsure_job(project: Any) -> GenerationJob:
    job = make_job(project, state=S.NEEDS_ATTENTION, estimated_cost_usd=Decimal("0.55"))
    LedgerEntry.objects.create(
        project=project, job=job, kind=EntryKind.RESERVE, amount=Decimal("0.55")
    )
    return job


# --- Retry retrieval -------------------------------------------------------------------------


def test_a_download_that_needs_attention_is_retrieved_again(
    project, alice, retrievals, django_capture_on_commit_callbacks
):
    job = make_job(project, state=S.NEEDS_ATTENTION, result_url=RESULT)

    with django_capture_on_commit_callbacks(execute=True):
        assert job_retrieval_retry(job=job, by=alice) is True

    job.refresh_from_db()
    assert job.state == S.RETRIEVING
    assert retrievals == [job.pk]
    event = job.events.get()
    assert (event.from_state, event.to_state, event.reason) == (
        S.NEEDS_ATTENTION,
        S.RETRIEVING,
        "Retrieval retried by alice.",
    )


def test_a_download_in_progress_is_not_started_twice(project, alice, retrievals):
    job = make_job(project, state=S.RETRIEVING, result_url=RESULT)

    with pytest.raises(ValidationError, match="being copied right now"):
        job_retrieval_retry(job=job, by=alice)
    assert retrievals == []


def test_a_stuck_download_is_taken_back_and_its_deadline_starts_again(
    project, alice, retrievals, django_capture_on_commit_callbacks
):
    job = make_job(project, state=S.RETRIEVING, result_url=RESULT)
    GenerationJob.objects.filter(pk=job.pk).update(
        updated=timezone.now() - datetime.timedelta(hours=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert job_retrieval_retry(job=job, by=alice) is True

    assert retrievals == [job.pk]
    assert job.events.filter(to_state=S.RETRIEVING, reason="Retrieval retried by alice.").exists()


@pytest.mark.parametrize(
    "state, result_url",
    [
        (S.NEEDS_ATTENTION, ""),
        (S.FAILED, RESULT),
        (S.SUCCEEDED, RESULT),
    ],
)
def test_only_a_finished_clip_that_was_not_stored_is_retrieved_again(
    project, alice, retrievals, state, result_url
):
    job = make_job(project, state=state, result_url=result_url)
    with pytest.raises(ValidationError, match="could not be stored"):
        job_retrieval_retry(job=job, by=alice)
    assert retrievals == []


# --- Adopt a task ----------------------------------------------------------------------------


def test_an_adopted_task_is_followed_from_what_the_provider_says(project, alice, provider):
    job = unsure_job(project)
    fake = provider(
        TaskStatus(
            task_id="task-42",
            state=TaskState.GENERATING,
            callback_url=f"https://reelforge.example{job.callback_path}",
        )
    )

    assert job_adopt_task(job=job, task_id=" task-42 ", by=alice) is True

    job.refresh_from_db()
    assert fake.asked == ["task-42"]
    assert (job.state, job.provider_task_id) == (S.GENERATING, "task-42")
    assert job.next_poll_at is not None
    assert list(job.events.values_list("from_state", "to_state", "reason")) == [
        (S.NEEDS_ATTENTION, S.SUBMITTED, "Task task-42 adopted by alice after review."),
        (S.SUBMITTED, S.GENERATING, "The provider is generating it."),
    ]


def test_a_task_made_for_another_job_is_refused(project, alice, provider):
    job = unsure_job(project)
    provider(
        TaskStatus(
            task_id="task-42",
            state=TaskState.SUCCESS,
            result_urls=[RESULT],
            callback_url="https://reelforge.example/callbacks/kie/another-job/token/",
        )
    )

    with pytest.raises(ValidationError, match="created for another job"):
        job_adopt_task(job=job, task_id="task-42", by=alice)
    job.refresh_from_db()
    assert (job.state, job.provider_task_id) == (S.NEEDS_ATTENTION, None)


def test_a_task_the_provider_does_not_know_is_refused(project, alice, provider):
    job = unsure_job(project)
    provider(ProviderError("record not found", action=Action.FAIL, code=404))

    with pytest.raises(ValidationError, match="could not confirm task nope: record not found"):
        job_adopt_task(job=job, task_id="nope", by=alice)
    job.refresh_from_db()
    assert job.state == S.NEEDS_ATTENTION


def test_a_task_another_job_has_is_refused_before_asking(project, alice, provider):
    make_job(project, state=S.SUBMITTED, provider_task_id="task-42")
    job = unsure_job(project)
    fake = provider(TaskStatus(task_id="task-42", state=TaskState.GENERATING))

    with pytest.raises(ValidationError, match="belongs to another job"):
        job_adopt_task(job=job, task_id="task-42", by=alice)
    assert fake.asked == []


# --- Never accepted --------------------------------------------------------------------------


def test_a_job_never_accepted_fails_and_is_released(project, alice):
    job = unsure_job(project)

    assert job_confirm_not_accepted(job=job, by=alice) is True

    job.refresh_from_db()
    assert (job.state, job.provider_error_code, job.next_poll_at) == (
        S.FAILED,
        "not_accepted",
        None,
    )
    release = LedgerEntry.objects.get(job=job, kind=EntryKind.RELEASE)
    assert release.amount == Decimal("0.55")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"provider_task_id": "task-1"}, "accepted this job as task task-1"),
        ({"result_url": RESULT}, "Retry the retrieval instead"),
        ({"state": S.SUBMITTED}, "Only jobs that need attention"),
    ],
)
def test_a_job_the_provider_has_cannot_be_called_never_accepted(project, alice, fields, message):
    job = make_job(project, **{"state": S.NEEDS_ATTENTION, **fields})
    with pytest.raises(ValidationError, match=message):
        job_confirm_not_accepted(job=job, by=alice)
    job.refresh_from_db()
    assert job.state == fields.get("state", S.NEEDS_ATTENTION)
