"""Prompts, their versions, and clips generated from them."""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from billing import selectors as billing_selectors
from videos import prompt_templates, services
from videos.admin.base import ServiceAdmin, ServiceForm, acting_user, adopt, usd
from videos.admin_scope import (
    TeamScopedAdmin,
    TeamScopedInline,
    team_action,
)
from videos.admin_site import confirmation_page, confirmed
from videos.jobs import (
    BudgetExceeded,
    CreditsShort,
    balance_check,
    budget_check,
    job_prepare,
    jobs_queue,
)
from videos.models import (
    AspectRatio,
    Duration,
    Kind,
    Mode,
    Prompt,
    PromptVersion,
    Role,
)
from videos.providers.base import NEGATIVE_PROMPT_MAX_CHARS


class PromptTextField(forms.CharField):
    """Prompt text as typed: blank and too long are the service's to refuse, in its words."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(widget=forms.Textarea, required=False, strip=False, **kwargs)

    def to_python(self, value: Any) -> str:
        # Browsers send a textarea's line breaks as CRLF: text nobody touched must still equal
        # the stored version, or every save would add one.
        return cast(str, super().to_python(value)).replace("\r\n", "\n")  # empty_value is ""


class PromptForm(ServiceForm):
    text = PromptTextField(
        help_text="Changed text is saved as a new version; the earlier ones stay, as jobs "
        "refer to them."
    )

    class Meta:
        model = Prompt
        fields = ["project", "title", "text"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            current = self.instance.current_version
            self.initial.setdefault("text", current.text if current else "")


WORDS = re.compile(r"\s+|\S+")
# Unchanged text longer than this is shortened around the changes.
CONTEXT_CHARACTERS = 40


def _shortened(text: str, *, keep_start: bool, keep_end: bool) -> str:
    if len(text) <= 2 * CONTEXT_CHARACTERS:
        return text
    head = text[:CONTEXT_CHARACTERS] if keep_start else ""
    tail = text[-CONTEXT_CHARACTERS:] if keep_end else ""
    return f"{head} … {tail}".strip()


def text_diff(before: str, after: str) -> SafeString:
    """What changed from `before` to `after`, word by word: removed words struck through,
    added ones underlined, long unchanged stretches shortened."""
    old, new = WORDS.findall(before), WORDS.findall(after)
    pieces = []
    opcodes = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    for index, (op, a0, a1, b0, b1) in enumerate(opcodes):
        if op == "equal":
            text = _shortened(
                "".join(old[a0:a1]), keep_start=index > 0, keep_end=index < len(opcodes) - 1
            )
            pieces.append(format_html("<span>{}</span>", text))
            continue
        if a1 > a0:
            pieces.append(format_html("<del>{}</del>", "".join(old[a0:a1])))
        if b1 > b0:
            pieces.append(format_html("<ins>{}</ins>", "".join(new[b0:b1])))
    return mark_safe("".join(pieces))  # every piece was escaped by format_html


class PromptVersionInline(TeamScopedInline, admin.TabularInline):
    """A prompt's versions, newest first, each with what it changed."""

    model = PromptVersion
    extra = 0
    fields = ("number", "changes", "created_by", "created")
    readonly_fields = fields
    ordering = ["-number"]

    def get_queryset(self, request: HttpRequest) -> Any:
        previous = PromptVersion.objects.filter(
            prompt=OuterRef("prompt"), number=OuterRef("number") - 1
        )
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(previous_text=Subquery(previous.values("text")[:1]))
        )

    @admin.display(description="what changed")
    def changes(self, version: PromptVersion) -> SafeString:
        previous = getattr(version, "previous_text", None)
        if previous is None:
            return format_html("<span>{}</span> <em>(first version)</em>", version.text)
        return text_diff(previous, version.text)


class GenerateClipsForm(forms.Form):
    """The choices "Generate clips" applies to every selected prompt; blank: the project's."""

    duration = forms.TypedChoiceField(
        choices=[("", "Project default"), *Duration.choices],
        coerce=int,
        empty_value=None,
        required=False,
    )
    aspect_ratio = forms.ChoiceField(
        choices=[("", "Project default"), *AspectRatio.choices], required=False
    )
    sound = forms.TypedChoiceField(
        choices=[("", "Project default"), ("yes", "With sound"), ("no", "Silent")],
        coerce=lambda value: value == "yes",
        empty_value=None,
        required=False,
    )
    # Taken by projects on the official Kling API; a kie.ai project's row says it cannot.
    negative_prompt = forms.CharField(
        max_length=NEGATIVE_PROMPT_MAX_CHARS,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the clips must not show (projects on the official Kling API only).",
    )
    mode = forms.ChoiceField(
        choices=[("", "Provider default"), *Mode.choices],
        required=False,
        help_text="Projects on the official Kling API only.",
    )


def clip_plan(prompts: list[Prompt], options: dict[str, Any]) -> dict[str, Any]:
    """What generating a clip from each prompt would queue and cost, judged as `jobs_queue`
    will judge it: each prompt's job prepared (`job_prepare`), each project's total against its
    remaining budget (`budget_check`) and all of it against the provider balance
    (`balance_check`). Saves nothing."""
    specs, rows = [], []
    chosen = {name: value for name, value in options.items() if value not in (None, "")}
    for prompt in prompts:
        version = prompt.current_version
        try:
            spec = job_prepare(
                project=prompt.project, kind=Kind.TEXT_TO_VIDEO, prompt_version=version, **chosen
            )
        except ValidationError as exc:
            rows.append({"prompt": prompt, "version": version, "error": " ".join(exc.messages)})
            continue
        specs.append(spec)
        rows.append({"prompt": prompt, "version": version, "spec": cast(Any, spec)})
    by_project: dict[int, list[Any]] = {}
    for spec in specs:
        by_project.setdefault(spec.project.pk, []).append(spec)
    money = billing_selectors.projects_money([own[0].project for own in by_project.values()])
    projects = []
    for project_id, own in by_project.items():
        total = sum((spec.estimated_cost_usd for spec in own), Decimal("0"))
        refusal = ""
        try:
            budget_check(own[0].project, total, jobs=len(own))
        except BudgetExceeded as exc:
            refusal = str(exc)
        projects.append(
            {
                "project": own[0].project,
                "clips": len(own),
                "total_usd": total,
                "money": money[project_id],
                "left_usd": usd(money[project_id].remaining_usd),
                "left_after_usd": usd(
                    None if (left := money[project_id].remaining_usd) is None else left - total
                ),
                "refusal": refusal,
            }
        )
    balance = balance_check(specs)
    total = sum((spec.estimated_cost_usd for spec in specs), Decimal("0"))
    return {
        "specs": specs,
        "rows": rows,
        "projects": projects,
        "balance": balance,
        "total_usd": total,
        "ready": len(specs) == len(rows) > 0
        and balance.covers
        and not any(row["refusal"] for row in projects),
    }


@admin.register(Prompt)
class PromptAdmin(TeamScopedAdmin, ServiceAdmin):
    """Editors write prompts here (every change of text is a new version, listed with what it
    changed) and generate clips from them."""

    form = PromptForm
    list_display = ["title", "project", "version", "variables", "updated"]
    list_filter = ["project__team", "project"]
    search_fields = ["title", "versions__text"]
    list_select_related = ["project"]
    inlines = [PromptVersionInline]
    actions = ["generate_clips", "make_batch"]
    add_right = change_right = Role.EDITOR  # and never deleted: its versions are kept forever

    def get_queryset(self, request: HttpRequest) -> Any:
        current = PromptVersion.objects.filter(prompt=OuterRef("pk")).order_by("-number")
        return (
            super()
            .get_queryset(request)
            .annotate(
                current_number=Subquery(current.values("number")[:1]),
                current_id=Subquery(current.values("pk")[:1]),
                current_text=Subquery(current.values("text")[:1]),
            )
        )

    @admin.display(description="variables")
    def variables(self, prompt: Prompt) -> str:
        return ", ".join(prompt_templates.variables_of(cast(Any, prompt).current_text or ""))

    @team_action(right=Role.EDITOR, description="Make a batch (from a CSV) of the selected prompt")
    def make_batch(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """The portal's batch page: the same preview of every row, then queue."""
        prompts = list(queryset[:2])
        if len(prompts) != 1:
            self.message_user(request, "Select one prompt to make a batch of.", messages.WARNING)
            return None
        prompt = cast(Any, prompts[0])
        url = reverse("portal:batch-new", args=[prompt.project_id])
        return HttpResponseRedirect(f"{url}?prompt_version={prompt.current_id}")

    @admin.display(description="version", ordering="current_number")
    def version(self, prompt: Prompt) -> Any:
        return cast(Any, prompt).current_number  # annotated by the queryset

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["project"] if obj is not None else []  # its versions belong to the project's jobs

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Prompt, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = services.prompt_update(
                prompt=obj, by=acting_user(request), title=data["title"], text=data["text"]
            )
        else:
            saved = services.prompt_create(
                project=data["project"],
                title=data["title"],
                text=data["text"],
                by=acting_user(request),
            )
        adopt(obj, saved)

    @team_action(right=Role.EDITOR, description="Generate clips from selected prompts")
    def generate_clips(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """An intermediate page: choose duration, aspect ratio, sound (and, on the official
        Kling API, a negative prompt and mode), see the estimate against each project's budget
        and the provider balance, then queue."""
        prompts = list(queryset.select_related("project", "project__team").order_by("pk"))
        form = GenerateClipsForm(request.POST if "options" in request.POST else None)
        options = form.cleaned_data if form.is_valid() else {}
        plan = clip_plan(prompts, options)
        problem = ""
        if confirmed(request) and form.is_bound and form.is_valid() and plan["ready"]:
            try:
                with transaction.atomic():
                    queued = jobs_queue(plan["specs"], by=acting_user(request))
            except (BudgetExceeded, CreditsShort) as exc:  # money moved since the estimate
                problem = str(exc)
            else:
                self.message_user(
                    request,
                    f"Queued {len(queued)} clips (estimated {usd(plan['total_usd'])}).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:videos_generationjob_changelist"))
        return confirmation_page(
            self,
            request,
            action="generate_clips",
            title="Generate clips",
            rows=[],
            question=f"Queue {len(plan['specs'])} clips for an estimated {usd(plan['total_usd'])}?",
            button=f"Yes, queue {len(plan['specs'])} clips",
            form=form,
            template="admin/reelforge/generate_clips.html",
            plan=plan,
            problem=problem,
        )


@admin.register(PromptVersion)
class PromptVersionAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ["prompt", "number", "created_by", "created"]
    list_filter = ["prompt__project"]
    search_fields = ["text", "prompt__title"]
    list_select_related = ["prompt", "created_by"]
