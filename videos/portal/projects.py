"""A project's page: the new-clip form with its live estimate, the jobs (updating live while
any is in progress) and the gallery of finished clips."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from billing import selectors as billing_selectors
from billing.selectors import PriceMissing, ProjectMoney
from billing.services import job_price
from videos import selectors, services
from videos.jobs import BudgetExceeded, CreditsShort, budget_check, gate
from videos.models import GenerationJob, JobState, Kind, Project, PromptVersion, Role
from videos.portal.forms import ClipForm, errors_onto
from videos.portal.seats import Seat, is_htmx, project_seat, signed_in_user

JOBS_SHOWN = 20
CLIPS_PER_PAGE = 12
# States a job leaves by itself: while one is shown, the list asks again every 2 seconds.
ACTIVE_STATES = [
    JobState.QUEUED,
    JobState.SUBMITTING,
    JobState.SUBMITTED,
    JobState.GENERATING,
    JobState.RETRIEVING,
]


def _filters(request: HttpRequest) -> dict[str, Any]:
    states = [state for state in request.GET.getlist("state") if state in JobState.values]
    return {"states": states, "text": request.GET.get("q", "")[:200]}


def _query(request: HttpRequest) -> str:
    """The filters as a query string, for the fragments to ask with."""
    filters = _filters(request)
    given = {"q": filters["text"], "state": filters["states"]}
    return urlencode({key: value for key, value in given.items() if value}, doseq=True)


def _jobs(request: HttpRequest, project: Project) -> dict[str, Any]:
    """The page of the job list the request asks for (`before`: the job it starts after), and
    what the list needs to page and to poll."""
    jobs = selectors.job_list(user=signed_in_user(request)).filter(project=project)
    page = selectors.job_page(
        selectors.job_filter(jobs, **_filters(request)),
        before=request.GET.get("before"),
        size=JOBS_SHOWN,
    )
    query = _query(request)
    jobs_query = query
    if page.before is not None:
        jobs_query = "&".join(filter(None, [query, urlencode({"before": page.before.pk})]))
    return {
        "jobs": page.jobs,
        "polling": any(job.state in ACTIVE_STATES for job in page.jobs),
        "jobs_query": jobs_query,
        "paged": page.before is not None,
        "older_than": page.jobs[-1].pk if page.has_older else "",
    }


def _clips(request: HttpRequest, project: Project) -> QuerySet[GenerationJob]:
    jobs = selectors.job_list(user=signed_in_user(request)).filter(
        project=project, state=JobState.SUCCEEDED, asset__isnull=False
    )
    return selectors.job_filter(jobs, text=_filters(request)["text"])


def _prompt_version(request: HttpRequest, project: Project, raw: Any) -> PromptVersion | None:
    """The saved prompt version a form names, if the user may see it (the service checks that
    it belongs to this project)."""
    pk = selectors.id_or_none(raw)
    if pk is None:
        return None
    return selectors.prompt_version_visible(user=signed_in_user(request)).filter(pk=pk).first()


@dataclass(frozen=True)
class ClipPage:
    """A page of the gallery, newest first. No total is counted: with thousands of clips the
    COUNT costs more than the page, and "Newer" / "Older" is all the gallery offers."""

    clips: list[GenerationJob]
    number: int
    has_next: bool

    def __iter__(self) -> Iterator[GenerationJob]:
        return iter(self.clips)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


def _clip_page(request: HttpRequest, project: Project) -> ClipPage:
    raw = request.GET.get("page", "")
    number = int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else 1
    first = (number - 1) * CLIPS_PER_PAGE
    rows = list(_clips(request, project)[first : first + CLIPS_PER_PAGE + 1])
    return ClipPage(rows[:CLIPS_PER_PAGE], number, has_next=len(rows) > CLIPS_PER_PAGE)


def _page_context(
    request: HttpRequest, project: Project, seat: Seat, money: ProjectMoney
) -> dict[str, Any]:
    clips = _clip_page(request, project)
    return {
        "project": project,
        "seat": seat,
        "money": money,
        **_jobs(request, project),
        "clips": clips,
        "latest_clip": _latest_clip_id(request, project),
        "filters": _filters(request),
        "states": JobState.choices,
        "query": _query(request),
        "batches": selectors.batch_list(user=signed_in_user(request)).filter(project=project)[:5],
    }


def _latest_clip_id(request: HttpRequest, project: Project) -> str:
    latest = _clips(request, project).values_list("pk", flat=True).first()
    return str(latest or "")


@login_required
@require_GET
def project_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, seat = project_seat(request, project_id)
    money = billing_selectors.project_money(project)
    context = _page_context(request, project, seat, money)
    if seat.can_edit:
        version = _prompt_version(request, project, request.GET.get("prompt_version"))
        initial = None
        if version is not None:
            initial = {
                "prompt": version.text,
                "prompt_version": version.pk,
                "duration": project.default_duration,
                "aspect_ratio": project.default_aspect_ratio,
                "sound": project.default_sound,
            }
        form = ClipForm(project=project, initial=initial)
        context.update(_form_context(form, project, version, money))
    return render(request, "portal/project.html", context)


@login_required
@require_GET
def project_jobs(request: HttpRequest, project_id: int) -> HttpResponse:
    """The live list: polled every 2 s while any job shown is in progress."""
    project, seat = project_seat(request, project_id)
    latest_clip = _latest_clip_id(request, project)
    response = render(
        request,
        "portal/_jobs.html",
        {
            "project": project,
            "seat": seat,
            **_jobs(request, project),
            "query": _query(request),
            "latest_clip": latest_clip,
        },
    )
    # A clip finished since the page was drawn: the gallery fetches itself again.
    if request.GET.get("latest_clip", "") != latest_clip:
        trigger_client_event(response, "clips-changed")
    return response


@login_required
@require_GET
def project_gallery(request: HttpRequest, project_id: int) -> HttpResponse:
    project, seat = project_seat(request, project_id)
    clips = _clip_page(request, project)
    return render(
        request,
        "portal/_gallery.html",
        {"project": project, "seat": seat, "clips": clips, "query": _query(request)},
    )


def _form_context(
    form: ClipForm,
    project: Project,
    version: PromptVersion | None,
    money: ProjectMoney | None = None,
) -> dict[str, Any]:
    estimate = _estimate(form, project, version, money)
    return {"form": form, "prompt_version": version, "estimate": estimate}


def _estimate(
    form: ClipForm,
    project: Project,
    version: PromptVersion | None,
    money: ProjectMoney | None = None,
) -> dict[str, Any]:
    """What the clip the form describes would cost, what the budget has left, and whether the
    budget and the provider balance can pay for it (the same checks as creating it)."""
    data = form.data if form.is_bound else {}
    try:
        duration = int(data.get("duration") or project.default_duration)
    except ValueError:
        duration = project.default_duration
    sound = bool(data.get("sound")) if form.is_bound else project.default_sound
    money = money or billing_selectors.project_money(project)
    try:
        price = job_price(duration=duration, sound=sound, provider=project.provider)
    except PriceMissing as exc:
        return {"problem": str(exc), "money": money}
    refusal = ""
    try:
        budget_check(project, price.usd, money=money)
    except BudgetExceeded as exc:
        refusal = str(exc)
    balance = gate.balance_for(credits_needed=price.credits, provider=project.provider)
    return {
        "price": price.usd,
        "money": money,
        "budget_refusal": refusal,
        "balance_refusal": "" if balance.covers else balance.message,
    }


@login_required
@require_POST
def clip_estimate(request: HttpRequest, project_id: int) -> HttpResponse:
    project, seat = project_seat(request, project_id)
    seat.require(Role.EDITOR)
    form = ClipForm(request.POST, request.FILES, project=project)
    version = _prompt_version(request, project, request.POST.get("prompt_version"))
    return render(
        request,
        "portal/_estimate.html",
        {"estimate": _estimate(form, project, version), "project": project},
    )


@login_required
@require_POST
def clip_create(request: HttpRequest, project_id: int) -> HttpResponse:
    """Queue the clip and answer at once: the live list shows it from the next look."""
    project, seat = project_seat(request, project_id)
    seat.require(Role.EDITOR)
    form = ClipForm(request.POST, request.FILES, project=project)
    version = _prompt_version(request, project, request.POST.get("prompt_version"))
    job = None
    if form.is_valid():
        inputs = form.inputs(version)
        if form.cleaned_data["kind"] == Kind.IMAGE_TO_VIDEO and "image" not in inputs:
            form.add_error("image", "Choose an image to animate.")
        else:
            try:
                job, _ = services.job_create_once(
                    by=signed_in_user(request),
                    idempotency_key=f"portal:{form.cleaned_data['request_id']}",
                    **inputs,
                )
            except ValidationError as exc:
                errors_onto(form, exc)
            except (BudgetExceeded, CreditsShort, services.Conflict) as exc:
                form.add_error(None, str(exc))
    if job is not None and not is_htmx(request):
        messages.success(request, "Your clip is queued: it appears below as it progresses.")
        return redirect("portal:project", project.pk)
    if job is not None:
        form = ClipForm(project=project)  # a fresh form for the next clip
        version = None
    context = {
        "project": project,
        "seat": seat,
        "created": job,
        **_form_context(form, project, version),
    }
    if not is_htmx(request):
        context.update(
            _page_context(request, project, seat, billing_selectors.project_money(project))
        )
        return render(request, "portal/project.html", context, status=400)
    response: HttpResponse = TemplateResponse(request, "portal/_clip_form.html", context)
    if job is not None:
        trigger_client_event(response, "jobs-changed")
    return response
