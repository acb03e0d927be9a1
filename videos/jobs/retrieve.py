"""Steps 4 and 5, retrieve and settle: copy the clip into storage, then charge for it."""

from __future__ import annotations

import datetime
import logging
import time
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from videos.jobs.clock import retrieval_lease_end
from videos.jobs.download import ResultRejected, ResultUnreachable, store_result
from videos.jobs.endings import settle
from videos.jobs.states import Party, S, note, transition
from videos.jobs.timing import backoff, conf, deadline
from videos.models import (
    Asset,
    GenerationJob,
)
from videos.providers import get_provider

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def job_retrieve(
    job_id: Any, *, now: datetime.datetime | None = None, job: GenerationJob | None = None
) -> None:
    """Copy the finished clip into storage, probe it, and settle; the job becomes `succeeded`.

    An expired result URL is refreshed (recordInfo, then download-url) and tried again; a result
    still unreachable after RETRIEVAL_DEADLINE_MINUTES, or one that is not a playable video,
    makes the job need attention: it is never called a success, and never silently dropped.
    A canceled job's clip is stored and charged the same way, and the job stays canceled.
    `job` is the job as its caller has just moved it into `retrieving`, to spare reading it again.
    """
    just_moved = job is not None
    job = job or GenerationJob.objects.select_related("project").get(pk=job_id)
    canceled = job.state == S.CANCELED
    if not (canceled and job.result_url) and job.state != S.RETRIEVING:
        return
    # A job its caller has just moved here has no asset but in a rare case (stored, then not
    # settled), which storing finds out all the same: it keeps the asset there is.
    if just_moved or not Asset.objects.filter(job=job).exists():
        lease = RetrievalLease(job)
        lease.renew_if_due()
        try:
            store_result(job, get_provider(job.provider), on_progress=lease.renew_if_due)
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
        # Its own back-off, from seconds: an outage of storage is usually short.
        attempts = job.retrieve_attempts + 1
        delay = backoff(
            attempts,
            initial=conf("RETRIEVAL_RETRY_INITIAL_SECONDS"),
            cap=conf("RETRIEVAL_RETRY_MAX_SECONDS"),
        )
        GenerationJob.objects.filter(pk=job.pk, state=S.RETRIEVING).update(
            retrieve_after=now + datetime.timedelta(seconds=delay), retrieve_attempts=attempts
        )
        note(
            job,
            f"Could not copy the result into storage yet ({exc}); will try again in {delay:.0f} s.",
        )
        return
    if job.state == S.CANCELED:
        # The provider was paid for it all the same.
        settle(job, canceled=True, note=f"The clip could not be stored ({exc}).")
        return
    retrieval_give_up(
        job, party=Party.WORKER, reason=f"The provider's result could not be stored ({exc})"
    )


class RetrievalLease:
    """The job's download is this worker's while it runs: the lease is renewed as the download
    goes, so another worker takes the job over only after this one has stopped for a lease."""

    def __init__(self, job: GenerationJob) -> None:
        self.job = job
        self.seconds = float(conf("STEP_LEASE_SECONDS"))
        left = (job.retrieve_after - timezone.now()).total_seconds() if job.retrieve_after else 0
        self.ends = time.monotonic() + max(left, 0.0)

    def renew(self) -> None:
        self.ends = time.monotonic() + self.seconds
        GenerationJob.objects.filter(pk=self.job.pk, state=S.RETRIEVING).update(
            retrieve_after=retrieval_lease_end(timezone.now())
        )

    def renew_if_due(self) -> None:
        """Renew once a third of the lease is spent (at once, if it was set long ago)."""
        if self.ends - time.monotonic() < self.seconds * 2 / 3:
            self.renew()


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
