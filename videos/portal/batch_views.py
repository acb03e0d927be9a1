"""Batches in the portal: paste or upload a CSV, see every row's prompt, price and errors with
the total against the budget, queue them all; then follow the batch, act on it, export it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from videos import batches, selectors
from videos.jobs import BudgetExceeded, CreditsShort
from videos.models import AspectRatio, Batch, Duration, Project, PromptVersion, Role
from videos.portal.forms import drop_untaken_options, mode_field, negative_prompt_field
from videos.portal.seats import Seat, project_seat, seat_in, signed_in_user
from videos.prompt_templates import variables_of

CHOICE_DEFAULT: list[tuple[Any, str]] = [("", "Each row's, or the project's")]


class ImagesInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class ImagesField(forms.FileField):
    """Several files under one name (Django's recipe for multiple uploads)."""

    def clean(self, data: Any, initial: Any = None) -> Any:
        if isinstance(data, list | tuple):
            return [super(ImagesField, self).clean(item, initial) for item in data]
        return super().clean(data, initial)


class BatchForm(forms.Form):
    prompt_version = forms.TypedChoiceField(label="Prompt", coerce=int)
    rows_text = forms.CharField(
        label="Rows (CSV)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="A header row naming the columns, then one row a clip.",
    )
    file = forms.FileField(label="Or upload a CSV", required=False)
    images = ImagesField(
        label="Images",
        required=False,
        widget=ImagesInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
        help_text="For rows with an `image` column naming one of these files.",
    )
    duration = forms.TypedChoiceField(
        label="Duration",
        choices=CHOICE_DEFAULT + Duration.choices,
        coerce=int,
        required=False,
        empty_value=None,
    )
    aspect_ratio = forms.ChoiceField(
        label="Aspect ratio", choices=CHOICE_DEFAULT + AspectRatio.choices, required=False
    )
    sound = forms.TypedChoiceField(
        label="Sound",
        choices=[*CHOICE_DEFAULT, ("yes", "Yes"), ("no", "No")],
        coerce=lambda value: value == "yes",
        required=False,
        empty_value=None,
    )
    negative_prompt = negative_prompt_field(
        "What the clips must not show, for rows that say nothing of it."
    )
    mode = mode_field()

    def __init__(
        self, *args: Any, versions: list[PromptVersion], project: Project, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        drop_untaken_options(self, project)
        self.versions = {version.pk: version for version in versions}
        self.fields["prompt_version"].choices = [  # type: ignore[attr-defined]
            (
                version.pk,
                f"{version.prompt.title} (v{version.number}): "
                f"{', '.join(variables_of(version.text)) or 'no variables'}",
            )
            for version in versions
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        try:
            if upload is not None:
                text = upload.read(batches.CSV_MAX_BYTES + 1)
                data["rows"] = batches.rows_from_csv(text)
                # The preview keeps the rows in the text box, so queueing sends them again.
                data["rows_text"] = text.decode("utf-8-sig", errors="replace")
            elif (data.get("rows_text") or "").strip():
                data["rows"] = batches.rows_from_csv(data["rows_text"])
            else:
                raise ValidationError({"rows_text": "Paste the rows, or upload a CSV."})
        except ValidationError as exc:
            for message in exc.messages:
                self.add_error("rows_text", message)
        return data

    def plan_arguments(self, request: HttpRequest) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "prompt_version": self.versions[data["prompt_version"]],
            "rows": data["rows"],
            "duration": data.get("duration"),
            "aspect_ratio": data.get("aspect_ratio") or "",
            "sound": data.get("sound"),
            "negative_prompt": data.get("negative_prompt", ""),
            "mode": data.get("mode", ""),
            "images": {image.name: image for image in request.FILES.getlist("images")},
        }


def _versions(project: Project) -> list[PromptVersion]:
    """The current version of each of the project's saved prompts."""
    return [
        version
        for prompt in project.prompts.prefetch_related("versions").order_by("title")
        if (version := max(prompt.versions.all(), key=lambda v: v.number, default=None))
    ]


@login_required
@require_http_methods(["GET", "POST"])
def batch_new(request: HttpRequest, project_id: int) -> HttpResponse:
    project, seat = project_seat(request, project_id)
    seat.require(Role.EDITOR)
    versions = _versions(project)
    initial = {"prompt_version": request.GET.get("prompt_version")}
    form = BatchForm(
        request.POST or None,
        request.FILES or None,
        versions=versions,
        project=project,
        initial=initial,
    )
    plan = None
    if request.method == "POST" and form.is_valid():
        arguments = form.plan_arguments(request)
        if form.cleaned_data.get("file") is not None:  # shown in the box from now on
            shown = request.POST.copy()
            shown["rows_text"] = form.cleaned_data["rows_text"]
            form.data = shown
        if request.POST.get("action") == "queue":
            try:
                batch = batches.batch_create(by=signed_in_user(request), **arguments)
            except batches.BatchInvalid as exc:
                plan = exc.plan
            except (BudgetExceeded, CreditsShort) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Queued {len(batch.rows)} clips.")
                return redirect("portal:batch", batch.pk)
        if plan is None:
            plan = batches.batch_plan(**arguments)
    return render(
        request,
        "portal/batch_new.html",
        {"project": project, "seat": seat, "form": form, "plan": plan, "versions": versions},
        status=400 if form.errors else 200,
    )


def _batch_seat(request: HttpRequest, batch_id: int) -> tuple[Batch, Seat]:
    batch = selectors.batch_get(user=signed_in_user(request), batch_id=batch_id)
    seat = seat_in(request, batch.team_id) if batch is not None else None
    if batch is None or seat is None:
        raise Http404("No such batch.")
    return batch, seat


def _batch_context(batch: Batch, seat: Seat) -> dict[str, Any]:
    jobs = batches.batch_jobs(batch)
    progress = batches.batch_progress(batch, jobs)
    names = variables_of(batch.prompt_version.text)
    return {
        "batch": batch,
        "seat": seat,
        "progress": progress,
        "rows": [
            (job, [batch.rows[(job.batch_row or 1) - 1].get(name, "") for name in names])
            for job in jobs
        ],
        "variables": names,
        "polling": not progress.finished,
    }


@login_required
@require_GET
def batch_page(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch, seat = _batch_seat(request, batch_id)
    return render(request, "portal/batch.html", _batch_context(batch, seat))


@login_required
@require_GET
def batch_progress_fragment(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch, seat = _batch_seat(request, batch_id)
    return render(request, "portal/_batch_progress.html", _batch_context(batch, seat))


@login_required
@require_POST
def batch_action(request: HttpRequest, batch_id: int, action: str) -> HttpResponse:
    batch, seat = _batch_seat(request, batch_id)
    seat.require(Role.EDITOR)
    by = signed_in_user(request)
    if action == "cancel-remaining":
        canceled = batches.batch_cancel_remaining(batch=batch, by=by)
        messages.success(request, f"Canceled {canceled} jobs.")
    elif action == "retry-failed":
        retried, refusal = batches.batch_retry_failed(batch=batch, by=by)
        messages.success(request, f"Retrying {len(retried)} jobs.")
        if refusal:
            messages.error(request, refusal)
    else:
        raise Http404("No such action.")
    return redirect("portal:batch", batch.pk)
