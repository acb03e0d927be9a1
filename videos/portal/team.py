"""The team: its members and their roles (owners change them and take members out),
invitations (owners), leaving; and the user's own API tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from videos import selectors, services
from videos.models import Membership, Role
from videos.portal.forms import InvitationForm, RoleForm, TokenForm, errors_onto
from videos.portal.seats import current_seat, signed_in_user


def _team_page(
    request: HttpRequest, form: InvitationForm | None = None, status: int = 200
) -> HttpResponse:
    seat = current_seat(request)
    return render(
        request,
        "portal/team.html",
        {
            "seat": seat,
            "members": selectors.membership_list(team=seat.team),
            "invitations": selectors.team_invitations(team=seat.team) if seat.is_owner else [],
            "form": form or InvitationForm(),
            "roles": Role.choices,
            "personal": seat.team.personal_for_id == signed_in_user(request).pk,
        },
        status=status,
    )


@login_required
@require_GET
def team_page(request: HttpRequest) -> HttpResponse:
    return _team_page(request)


@login_required
@require_POST
def invite(request: HttpRequest) -> HttpResponse:
    seat = current_seat(request)
    seat.require(Role.OWNER)
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_create(
                team=seat.team, by=signed_in_user(request), **form.cleaned_data
            )
        except ValidationError as exc:
            errors_onto(form, exc)
        else:
            who = form.cleaned_data["username"] or form.cleaned_data["email"]
            messages.success(request, f"{who} is invited; they answer when they sign in.")
            return redirect("portal:team")
    return _team_page(request, form, status=400)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    seat = current_seat(request)
    seat.require(Role.OWNER)
    invitation = selectors.team_invitations(team=seat.team).filter(pk=invitation_id).first()
    if invitation is None:
        messages.error(request, "That invitation was answered or withdrawn already.")
    else:
        try:
            services.invitation_revoke(invitation=invitation, by=signed_in_user(request))
            messages.success(request, "The invitation is withdrawn.")
        except services.Conflict as exc:
            messages.error(request, str(exc))
    return redirect("portal:team")


def _member(request: HttpRequest, user_id: int) -> Membership:
    """A member of the signed-in owner's current team (anyone else's is a 404)."""
    seat = current_seat(request)
    seat.require(Role.OWNER)
    membership = selectors.membership_get(team=seat.team, user_id=user_id)
    if membership is None:
        raise Http404("No such member.")
    return membership


@login_required
@require_POST
def member_role(request: HttpRequest, user_id: int) -> HttpResponse:
    membership = _member(request, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(error) for error in form.errors["role"]))
        return redirect("portal:team")
    try:
        services.membership_set_role(membership=membership, role=form.cleaned_data["role"])
    except services.Conflict as exc:
        messages.error(request, str(exc))
    else:
        who = membership.user.get_username()
        messages.success(request, f"{who} is now {membership.get_role_display().lower()}.")
    return redirect("portal:team")


@login_required
@require_POST
def member_remove(request: HttpRequest, user_id: int) -> HttpResponse:
    membership = _member(request, user_id)
    if membership.user_id == signed_in_user(request).pk:
        messages.error(request, "To leave the team yourself, use Leave below.")
        return redirect("portal:team")
    try:
        services.membership_remove(membership=membership)
    except services.Conflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{membership.user.get_username()} is no longer in the team.")
    return redirect("portal:team")


@login_required
@require_POST
def team_leave(request: HttpRequest) -> HttpResponse:
    seat = current_seat(request)
    try:
        services.membership_leave(team=seat.team, by=signed_in_user(request))
    except services.Conflict as exc:
        messages.error(request, str(exc))
        return redirect("portal:team")
    messages.success(request, f"You left {seat.team}.")
    return redirect("portal:home")


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    form = TokenForm(request.POST or None)
    new_key = ""
    if request.method == "POST" and form.is_valid():
        try:
            _, new_key = services.api_token_create(user=user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            errors_onto(form, exc)
        else:
            form = TokenForm()
    response = render(
        request,
        "portal/tokens.html",
        {
            "seat": current_seat(request),
            "tokens": selectors.api_tokens_of(user=user),
            "form": form,
            "new_key": new_key,
            "api_base": request.build_absolute_uri(reverse("api:jobs")).rsplit("/jobs/", 1)[0],
            "docs_url": reverse("api:docs"),
            "debug": settings.DEBUG,
        },
        status=400 if form.errors else 200,
    )
    # A page showing a secret is never kept by the browser or a proxy.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = selectors.api_token_get(user=signed_in_user(request), token_id=token_id)
    if token is not None:
        services.api_token_revoke(token=token)
        messages.success(request, f"The token {token.name} is revoked.")
    return redirect("portal:tokens")
