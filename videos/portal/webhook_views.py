"""A project's webhooks in the portal (owners): add an endpoint (its secret shown once),
enable or disable it, rotate its secret, send a test event, see recent deliveries with every
attempt and send one again."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from videos.models import Project, Role, WebhookEndpoint
from videos.portal.forms import errors_onto
from videos.portal.seats import Seat, project_seat, signed_in_user
from videos.webhooks import delivery as sending
from videos.webhooks.endpoints import (
    SUBSCRIBABLE,
    webhook_create,
    webhook_delete,
    webhook_rotate_secret,
    webhook_update,
)

DELIVERIES_SHOWN = 20


class EndpointForm(forms.Form):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label="Events",
        choices=[(event, event) for event in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )


def _owner_seat(request: HttpRequest, project_id: int) -> tuple[Project, Seat]:
    project, seat = project_seat(request, project_id)
    seat.require(Role.OWNER)
    return project, seat


def _page(
    request: HttpRequest,
    project: Project,
    seat: Seat,
    *,
    form: EndpointForm | None = None,
    secret: str = "",
    status: int = 200,
) -> HttpResponse:
    endpoints = list(project.webhooks.order_by("created", "id"))
    deliveries = {
        endpoint.pk: list(
            endpoint.deliveries.prefetch_related("tries").order_by("-created", "-id")[
                :DELIVERIES_SHOWN
            ]
        )
        for endpoint in endpoints
    }
    response = render(
        request,
        "portal/webhooks.html",
        {
            "project": project,
            "seat": seat,
            "endpoints": [(endpoint, deliveries[endpoint.pk]) for endpoint in endpoints],
            "form": form or EndpointForm(initial={"events": ["job.succeeded"]}),
            "secret": secret,
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"  # it may show a secret
    return response


@login_required
@require_http_methods(["GET", "POST"])
def webhooks_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project, seat = _owner_seat(request, project_id)
    if request.method == "GET":
        return _page(request, project, seat)
    form = EndpointForm(request.POST)
    if form.is_valid():
        try:
            _, secret = webhook_create(
                project=project,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                by=signed_in_user(request),
            )
        except ValidationError as exc:
            errors_onto(form, exc)
        else:
            return _page(request, project, seat, secret=secret)
    return _page(request, project, seat, form=form, status=400)


def _endpoint(project: Project, endpoint_id: int) -> WebhookEndpoint:
    endpoint = project.webhooks.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint


@login_required
@require_POST
def webhook_action(
    request: HttpRequest, project_id: int, endpoint_id: int, action: str
) -> HttpResponse:
    project, seat = _owner_seat(request, project_id)
    endpoint = _endpoint(project, endpoint_id)
    secret = ""
    if action == "enable":
        webhook_update(endpoint, enabled=True)
        messages.success(request, "The endpoint is enabled.")
    elif action == "disable":
        webhook_update(endpoint, enabled=False)
        messages.success(request, "The endpoint is disabled.")
    elif action == "rotate":
        secret = webhook_rotate_secret(endpoint)
    elif action == "test":
        sending.send_test(endpoint)
        messages.success(request, "A test event is on its way.")
    elif action == "delete":
        webhook_delete(endpoint)
        messages.success(request, "The endpoint is deleted.")
    elif action == "resend":
        original = endpoint.deliveries.filter(pk=request.POST.get("delivery") or 0).first()
        if original is None:
            raise Http404("No such delivery.")
        sending.delivery_resend(original)
        messages.success(request, "Sent again, as a new delivery.")
    else:
        raise Http404("No such action.")
    if secret:
        return _page(request, project, seat, secret=secret)
    return redirect("portal:webhooks", project.pk)
