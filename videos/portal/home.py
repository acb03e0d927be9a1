"""The dashboard, the team switcher, invitations and new projects."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing import selectors as billing_selectors
from videos import selectors, services
from videos.models import JobState, Role
from videos.portal.forms import ProjectForm, errors_onto
from videos.portal.seats import current_seat, signed_in_user, team_choose

LATEST_CLIPS = 6


@login_required
def home(request: HttpRequest) -> HttpResponse:
    seat = current_seat(request)
    user = signed_in_user(request)
    projects = list(selectors.project_list(user=user).filter(team=seat.team).order_by("name"))
    money = billing_selectors.projects_money(projects)
    counts = selectors.job_counts(team=seat.team)
    clips = selectors.job_list(user=user).filter(
        team=seat.team, state=JobState.SUCCEEDED, asset__isnull=False
    )[:LATEST_CLIPS]
    return render(
        request,
        "portal/home.html",
        {
            "seat": seat,
            "rows": [(project, money[project.pk]) for project in projects],
            "counts": [(state, counts.get(state, 0)) for state in JobState],
            "jobs_total": sum(counts.values()),
            "clips": clips,
            "pauses": selectors.submission_pauses(),
            "project_form": ProjectForm(),
        },
    )


@login_required
@require_POST
def project_create(request: HttpRequest) -> HttpResponse:
    seat = current_seat(request)
    seat.require(Role.EDITOR)
    form = ProjectForm(request.POST)
    if form.is_valid():
        try:
            project = services.project_create(team=seat.team, name=form.cleaned_data["name"])
        except ValidationError as exc:
            errors_onto(form, exc)
        else:
            return redirect("portal:project", project.pk)
    for message in form.errors.get("name", []) + form.non_field_errors():
        messages.error(request, str(message))
    return redirect("portal:home")


@login_required
@require_POST
def team_switch(request: HttpRequest) -> HttpResponse:
    if not team_choose(request, request.POST.get("team")):
        messages.error(request, "You are not a member of that team.")
    return redirect("portal:home")


@login_required
@require_POST
def invitation_answer(request: HttpRequest, invitation_id: int, answer: str) -> HttpResponse:
    user = signed_in_user(request)
    invitation = selectors.invitation_for(user=user, invitation_id=invitation_id)
    if invitation is None:
        messages.error(request, "That invitation is not yours, or no longer exists.")
        return redirect("portal:home")
    try:
        if answer == "accept":
            services.invitation_accept(invitation=invitation, by=user)
            team_choose(request, invitation.team_id)
            messages.success(request, f"You joined {invitation.team} as {invitation.role}.")
        else:
            services.invitation_decline(invitation=invitation, by=user)
            messages.info(request, f"You declined the invitation to {invitation.team}.")
    except services.Conflict as exc:
        messages.error(request, str(exc))
    return redirect("portal:home")
