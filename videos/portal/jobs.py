"""A job's page: its clip, what is known of it, its timeline in plain words, and the actions
its state allows."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from videos.jobs import BudgetExceeded, CreditsShort, job_cancel, job_retry
from videos.models import GenerationJob, JobState, Role
from videos.portal.projects import ACTIVE_STATES
from videos.portal.seats import Seat, back, job_seat, signed_in_user

RETRYABLE = (JobState.FAILED, JobState.CANCELED)
# Past these the clip is on its way in: there is nothing left to cancel.
CANCELABLE = (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.GENERATING)


def _context(job: GenerationJob, seat: Seat) -> dict[str, Any]:
    return {
        "job": job,
        "seat": seat,
        "asset": getattr(job, "asset", None),
        "events": sorted(job.events.all(), key=lambda event: (event.created, event.pk)),
        "polling": job.state in ACTIVE_STATES,
        "can_cancel": seat.can_edit and job.state in CANCELABLE,
        "can_retry": seat.can_edit
        and job.state in RETRYABLE
        and getattr(job, "retried_as_id", None) is None,
    }


@login_required
@require_GET
def job_page(request: HttpRequest, job_id: str) -> HttpResponse:
    job, seat = job_seat(request, job_id)
    return render(request, "portal/job.html", _context(job, seat))


@login_required
@require_GET
def job_status(request: HttpRequest, job_id: str) -> HttpResponse:
    """The job's state and timeline, polled while it is in progress; when it has finished the
    whole page is drawn again (it gains its player)."""
    job, seat = job_seat(request, job_id)
    response = render(request, "portal/_job_status.html", _context(job, seat))
    if request.GET.get("state") in ACTIVE_STATES and job.state not in ACTIVE_STATES:
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def job_cancel_view(request: HttpRequest, job_id: str) -> HttpResponse:
    job, seat = job_seat(request, job_id)
    seat.require(Role.EDITOR)
    if job_cancel(job=job, by=signed_in_user(request)):
        messages.success(request, "The job is canceled.")
    else:
        job.refresh_from_db()
        messages.error(request, f"The job cannot be canceled now: {job.state_reason}")
    return back(request, reverse("portal:job", args=[job.pk]))


@login_required
@require_POST
def job_retry_view(request: HttpRequest, job_id: str) -> HttpResponse:
    job, seat = job_seat(request, job_id)
    seat.require(Role.EDITOR)
    try:
        new = job_retry(job=job, by=signed_in_user(request))
    except ValidationError as exc:
        messages.error(request, " ".join(" ".join(m) for m in exc.message_dict.values()))
        return redirect("portal:job", job.pk)
    except (BudgetExceeded, CreditsShort) as exc:
        messages.error(request, str(exc))
        return redirect("portal:job", job.pk)
    messages.success(request, "A new attempt is queued.")
    return back(request, reverse("portal:job", args=[new.pk]))
