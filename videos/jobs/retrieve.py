"""Steps 4 and 5, retrieve and settle: copy the clip into storage, then charge for it."""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from videos.jobs.download import ResultRejected, ResultUnreachable, store_result
from videos.jobs.endings import settle
from videos.jobs.states import Party, S, note, transition
from videos.jobs.timing import conf, deadline
from videos.models import (
    Asset,
    GenerationJob,
)
from videos.providers import get_provider

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def job_retrieve(job_id: Any, *, now: datetime.datetime | None = None) -> None:
    """Copy the finished clip into storage, probe it, and settle; the job becomes `succeeded`.

    An expired result URL is refreshed (recordInfo, then download-url) and tried again; a result
    still unreachable after RETRIEVAL_DEADLINE_MINUTES, or one that is not a playable video,
    makes the job need attention: it is never called a success, and never silently dropped.
    A canceled job's clip is stored and charged the same way, and the job stays canceled.
    """
    job = GenerationJob.objects.select_related("project").get(pk=job_id)
    canceled = job.state == S.CANCELED
    if not (canceled and job.result_url) and job.state != S.RETRIEVING:
        return
    if not Asset.objects.filter(job=job).exists():
        try:
            store_result(job, get_provider(job.provider))
        except (ResultUnreachable, ResultRejected) as exc:
            _retrieval_failed(job, exc, now=now or timezone.now())
            return
        except Exception as exc:  # storage full, a bug: still a failure with its deadline
            logger.exception("Storing the result of job %s failed", job.pk)
            unexpected = ResultUnreachable(f"{type(exc).__name__}: {exc}")
            _retrieval_failed(job, unexpected, now=now or timezone.now())
            return
    settle(job, canceled=canceled)


def _retrieval_failed(job: GenerationJob, exc: Exception, *, now: datetime.datetime) -> None:
    logger.warning("Result of job %s not stored: %s", job.pk, exc)
    give_up = isinstance(exc, ResultRejected) or now >= retrieval_deadline(job)
    if not give_up:
        note(job, f"Could not copy the result into storage yet ({exc}); will try again.")
        return
    if job.state == S.CANCELED:
        # The provider was paid for it all the same.
        settle(job, canceled=True, note=f"The clip could not be stored ({exc}).")
        return
    retrieval_give_up(
        job, party=Party.WORKER, reason=f"The provider's result could not be stored ({exc})"
    )


def retrieval_give_up(job: GenerationJob, *, party: Party, reason: str) -> bool:
    return transition(
        job,
        to=S.NEEDS_ATTENTION,
        party=party,
        allowed_from=[S.RETRIEVING],
        reason=f"{reason}; it was paid for, so its reservation is kept until someone decides.",
    )


def retrieval_deadline(job: GenerationJob) -> datetime.datetime:
    started = job.events.filter(to_state=S.RETRIEVING).order_by("-created").values_list(
        "created", flat=True
    ).first() or deadline(job)
    return started + datetime.timedelta(minutes=conf("RETRIEVAL_DEADLINE_MINUTES"))
