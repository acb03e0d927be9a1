"""The portal's forms read and shape input only; the services judge it (their
ValidationErrors land on the form's fields), so every rule has one wording in every door."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from billing.forms import monthly_cap_field, warning_threshold_field
from videos.admin_site import ThrottledSignIn
from videos.models import PROMPT_MAX_LENGTH, AspectRatio, Duration, Kind, Mode, Project, Role
from videos.providers import provider_class
from videos.providers.base import IMAGE_MAX_BYTES, NEGATIVE_PROMPT_MAX_CHARS, OPTION_REFUSALS

IMAGE_TYPES = "image/jpeg,image/png,image/webp"


# Job options only some providers take (the official Kling API): each form that offers them
# drops the ones its project's provider does not (`drop_untaken_options`).
def negative_prompt_field(help_text: str) -> forms.CharField:
    return forms.CharField(
        label="Negative prompt",
        max_length=NEGATIVE_PROMPT_MAX_CHARS,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": NEGATIVE_PROMPT_MAX_CHARS}),
        help_text=help_text,
    )


def mode_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label="Mode",
        choices=[("", f"{Mode.STANDARD.label}, the default"), (Mode.PRO.value, Mode.PRO.label)],
        required=False,
    )


def drop_untaken_options(form: forms.Form, project: Project) -> None:
    for name in OPTION_REFUSALS.keys() - provider_class(project.provider).job_options:
        del form.fields[name]


class SignInForm(ThrottledSignIn):
    """Django's sign-in, with failed attempts counted like the admin's (one throttle)."""


def errors_onto(form: forms.Form, error: ValidationError) -> None:
    """A service's ValidationError on the form: each field's message on its field, the rest on
    the form as a whole."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)


class ClipForm(forms.Form):
    """A new clip: text to video, or image to video from an upload."""

    kind = forms.ChoiceField(
        choices=Kind.choices, initial=Kind.TEXT_TO_VIDEO, widget=forms.RadioSelect
    )
    prompt = forms.CharField(
        label="Prompt",
        max_length=PROMPT_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": PROMPT_MAX_LENGTH}),
        help_text="What happens in the clip: subject, action, camera, light.",
    )
    prompt_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    duration = forms.TypedChoiceField(label="Duration", choices=Duration.choices, coerce=int)
    aspect_ratio = forms.ChoiceField(
        label="Aspect ratio",
        choices=AspectRatio.choices,
        required=False,
        help_text="Text to video only: an image keeps its own shape.",
    )
    sound = forms.BooleanField(label="Sound", required=False)
    negative_prompt = negative_prompt_field("What the clip must not show.")
    mode = mode_field()
    image = forms.FileField(
        label="Image",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_TYPES}),
        help_text=f"JPEG, PNG or WebP, up to {IMAGE_MAX_BYTES // (1024 * 1024)} MB.",
    )
    # One per rendered form: a second click, or a reload of the POST, makes no second clip.
    request_id = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "duration": project.default_duration,
                "aspect_ratio": project.default_aspect_ratio,
                "sound": project.default_sound,
            },
        )
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["request_id"].initial = uuid.uuid4().hex
        for name in ("prompt", "image"):
            self.fields[name].widget.attrs["aria-describedby"] = f"id_{name}_help"
        drop_untaken_options(self, project)

    def inputs(self, prompt_version: Any) -> dict[str, Any]:
        """`job_prepare`'s arguments (see `videos.jobs.JOB_INPUTS`) from the cleaned form."""
        data = self.cleaned_data
        text_to_video = data["kind"] == Kind.TEXT_TO_VIDEO
        inputs: dict[str, Any] = {
            "project": self.project,
            "kind": data["kind"],
            "duration": data["duration"],
            "sound": data["sound"],
            "negative_prompt": data.get("negative_prompt", ""),
            "mode": data.get("mode", ""),
        }
        if prompt_version is not None:
            inputs["prompt_version"] = prompt_version
        elif data.get("prompt"):
            inputs["prompt"] = data["prompt"]
        if text_to_video:
            inputs["aspect_ratio"] = data.get("aspect_ratio") or None
        elif data.get("image") is not None:
            inputs["image"] = data["image"]
        return inputs


class InvitationForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150, required=False)
    email = forms.EmailField(label="Email", required=False)
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.EDITOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class BudgetForm(forms.Form):
    monthly_cap_usd = monthly_cap_field(label="Monthly cap (USD)", help_text="Empty: no cap.")
    warning_threshold = warning_threshold_field(label="Warn at (fraction of the cap)")


class TokenForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)


class ProjectForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
