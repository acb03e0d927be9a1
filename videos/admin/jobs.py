"""Generation jobs, their events and clips, and the provider account."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from billing import selectors as billing_selectors
from videos import selectors
from videos.admin.base import acting_user, usd
from videos.admin_scope import (
    SuperusersOnly,
    TeamScopedAdmin,
    TeamScopedInline,
    team_action,
)
from videos.admin_site import confirmation_page, confirmed
from videos.jobs import (
    BudgetExceeded,
    CreditsShort,
    budget_check,
    credits_check,
    job_adopt_task,
    job_cancel,
    job_confirm_not_accepted,
    job_give_up,
    job_inputs,
    job_prepare,
    job_retrieval_retry,
    job_retry,
    jobs_queue,
    submissions_resume,
)
from videos.media import job_clip_url, job_poster_url, job_source_image_url
from videos.models import (
    Asset,
    GenerationJob,
    JobEvent,
    JobState,
    ProviderAccount,
    Role,
)


class JobEventInline(TeamScopedInline, admin.TabularInline):
    model = JobEvent
    extra = 0
    fields = ("created", "from_state", "to_state", "reason")
    readonly_fields = fields


class GenerationJobCreateForm(forms.ModelForm):
    """The admin's "add job" form: its fields are `job_prepare`'s, which judges them as it does
    for every other door."""

    prompt = forms.CharField(
        widget=forms.Textarea, required=False, strip=False, help_text="Or choose a prompt version."
    )
    image = forms.FileField(required=False, help_text="JPEG, PNG or WebP, at most 10 MB.")
    image_url = forms.URLField(required=False, max_length=2000, assume_scheme="https")

    class Meta:
        model = GenerationJob
        fields = [
            "project",
            "kind",
            "prompt_version",
            "duration",
            "aspect_ratio",
            "sound",
            "negative_prompt",
            "mode",
        ]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.spec = job_prepare(**job_inputs(self.cleaned_data))
            budget_check(self.spec.project, self.spec.estimated_cost_usd)
            credits_check([self.spec])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        except (BudgetExceeded, CreditsShort) as exc:
            self.add_error(None, str(exc))
        return cleaned

    def _post_clean(self) -> None:
        # The pipeline builds the job; the model's own validation would run before it exists.
        pass


# A job's state as a badge: (background, text) colours.
BADGE_COLOURS = {
    JobState.QUEUED: ("#e5e7eb", "#374151"),
    JobState.SUBMITTING: ("#dbeafe", "#1e40af"),
    JobState.SUBMITTED: ("#dbeafe", "#1e40af"),
    JobState.GENERATING: ("#dbeafe", "#1e40af"),
    JobState.RETRIEVING: ("#e0e7ff", "#3730a3"),
    JobState.SUCCEEDED: ("#dcfce7", "#166534"),
    JobState.FAILED: ("#fee2e2", "#991b1b"),
    JobState.CANCELED: ("#f3f4f6", "#4b5563"),
    JobState.NEEDS_ATTENTION: ("#ffedd5", "#9a3412"),
}


def state_badge(job: GenerationJob) -> SafeString:
    background, colour = BADGE_COLOURS.get(JobState(job.state), ("#e5e7eb", "#374151"))
    return format_html(
        '<span class="job-state job-state-{}" title="{}" style="background:{};color:{};'
        'padding:2px 8px;border-radius:10px;font-weight:600;white-space:nowrap">{}</span>',
        job.state,
        job.state_reason,
        background,
        colour,
        job.get_state_display(),
    )


class ProviderErrorCodeFilter(admin.SimpleListFilter):
    """The provider's (or the platform's) error codes found among the user's jobs."""

    title = "provider error code"
    parameter_name = "error_code"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = (
            model_admin.get_queryset(request)
            .exclude(provider_error_code="")
            .order_by("provider_error_code")
            .values_list("provider_error_code", flat=True)
            .distinct()
        )
        return [(code, code) for code in codes]

    def has_output(self) -> bool:
        # Shown (and so applied) also when the user's jobs have no such code: then none match.
        return bool(self.lookup_choices) or self.value() is not None

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(provider_error_code=self.value()) if self.value() else queryset


def short(job: GenerationJob) -> str:
    return str(job.pk)[:8]


@admin.register(GenerationJob)
class GenerationJobAdmin(TeamScopedAdmin, admin.ModelAdmin):
    """Editors queue jobs, cancel and retry them, and resolve what the pipeline could not
    decide alone; every change goes through `videos.jobs`. Nobody edits a job by hand."""

    list_display = [
        "short_id",
        "badge",
        "project",
        "kind",
        "duration",
        "sound",
        "list_cost",
        "age",
        "poster",
    ]
    list_filter = [
        "state",
        "kind",
        "project__team",
        "project",
        "created",
        ProviderErrorCodeFilter,
        "duration",
        "sound",
    ]
    search_fields = ["prompt_text", "provider_task_id"]
    autocomplete_fields = ["prompt_version"]
    list_select_related = ["project", "asset"]
    date_hierarchy = "created"
    actions = [
        "cancel_jobs",
        "retry_jobs",
        "retry_retrieval",
        "resolve_needs_attention",
        "give_up_jobs",
    ]
    inlines = [JobEventInline]
    add_right = Role.EDITOR
    # Jobs change only through the pipeline; the callback token is a secret and never shown.
    readonly_fields = [
        "id",
        "state",
        "state_reason",
        "clip",
        "cost",
        "charge_discrepancy",
        "team",
        "project",
        "kind",
        "prompt_version",
        "prompt_text",
        "source_image_link",
        "source_image_url",
        "duration",
        "aspect_ratio",
        "sound",
        "negative_prompt",
        "mode",
        "estimated_cost_usd",
        "provider",
        "provider_task_id",
        "provider_error_code",
        "provider_error_message",
        "provider_credits",
        "result_url",
        "idempotency_key",
        "retry_of",
        "attempt",
        "canceled_by_user",
        "held_for",
        "submit_after",
        "submit_attempts",
        "next_poll_at",
        "poll_attempts",
        "submitted_at",
        "finished_at",
        "created_by",
        "created",
        "updated",
    ]

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super().get_queryset(request).annotate(cost_usd=billing_selectors.job_charge_subquery())
        )

    def get_search_results(
        self, request: HttpRequest, queryset: Any, search_term: str
    ) -> tuple[Any, bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        job_id = selectors.uuid_or_none(search_term.strip())
        if job_id is not None:  # a job's own id, as the API and the logs print it
            found = found | queryset.filter(pk=job_id)
        return found, may_have_duplicates

    @admin.display(description="job", ordering="created")
    def short_id(self, job: GenerationJob) -> str:
        return short(job)

    @admin.display(description="state", ordering="state")
    def badge(self, job: GenerationJob) -> SafeString:
        return state_badge(job)

    @admin.display(description="cost")
    def list_cost(self, job: GenerationJob) -> str:
        charged = getattr(job, "cost_usd", None)
        if charged is not None:
            return f"${Decimal(charged).quantize(Decimal('0.01'))}"
        return f"~${job.estimated_cost_usd.quantize(Decimal('0.01'))}"

    @admin.display(description="age", ordering="-created")
    def age(self, job: GenerationJob) -> str:
        return f"{timesince(job.created, timezone.now()).split(',')[0]} ago"

    @admin.display(description="poster")
    def poster(self, job: GenerationJob) -> str:
        asset = getattr(job, "asset", None)
        if asset is None or not asset.poster:
            return "-"
        return format_html(
            '<img src="{}" alt="poster of job {}" style="height:40px;border-radius:3px">',
            job_poster_url(job),
            short(job),
        )

    @admin.display(description="source image")
    def source_image_link(self, job: GenerationJob) -> str:
        # Through the membership-checked view: stored files are never public.
        if not job.source_image:
            return "-"
        return format_html(
            '<a href="{}"><img src="{}" alt="source image of job {}" style="max-height:120px"></a>',
            job_source_image_url(job),
            job_source_image_url(job),
            short(job),
        )

    @admin.display(description="clip")
    def clip(self, job: GenerationJob) -> str:
        asset = Asset.objects.filter(job=job).first()
        if asset is None:
            return "-"
        return format_html(
            '<video src="{}" poster="{}" controls preload="metadata" width="480"></video><br>'
            "{} x {}, {} s, {} fps, {}, {} bytes, sha256 {}",
            job_clip_url(job),
            job_poster_url(job) if asset.poster else "",
            asset.width,
            asset.height,
            asset.duration_s,
            f"{asset.fps:.0f}",
            "with sound" if asset.has_audio else "silent",
            asset.size_bytes,
            asset.sha256,
        )

    @admin.display(description="cost")
    def cost(self, job: GenerationJob) -> str:
        totals = billing_selectors.job_ledger_total(job)
        return (
            f"estimated ${job.estimated_cost_usd}; charged ${totals['charge']}; "
            f"reserved ${totals['reserve']}, released ${totals['release']}"
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = GenerationJobCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A job's page shows everything, in this order; the add form is job_prepare's fields.
        return self.readonly_fields if obj is not None else super().get_fields(request, obj)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.inlines if obj is not None else []

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Not wrapped in one transaction, unlike Django's: the form resolves image URLs, which
        # must not hold the database's write lock, and the pipeline makes its own transactions.
        try:
            return self._changeform_view(request, *args, **kwargs)  # type: ignore[attr-defined]
        except (BudgetExceeded, CreditsShort) as exc:
            # Checked on the form; only a request racing this one gets here.
            self.message_user(request, str(exc), level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> GenerationJob:
        [job] = jobs_queue([form.spec], by=acting_user(request))
        return job

    def save_model(self, request: HttpRequest, obj: GenerationJob, form: Any, change: bool) -> None:
        pass  # saved by jobs_queue, in save_form

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        for account in ProviderAccount.objects.filter(paused_at__isnull=False):
            self.message_user(
                request,
                f"Submissions to {account.provider} are paused: {account.pause_reason} "
                "Resume them from Provider accounts once fixed.",
                level=messages.ERROR,
            )
        return super().changelist_view(request, extra_context)

    # --- Actions: each shows what it will do, job by job, and acts once confirmed ------------

    def _confirm(
        self,
        request: HttpRequest,
        jobs: list[GenerationJob],
        *,
        action: str,
        title: str,
        outcomes: list[str],
        question: str,
        button: str,
    ) -> TemplateResponse:
        return confirmation_page(
            self,
            request,
            action=action,
            title=title,
            rows=list(zip(jobs, outcomes, strict=False)),
            question=question,
            button=button,
        )

    @team_action(right=Role.EDITOR, description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        jobs = list(queryset)
        if not confirmed(request):
            outcomes = [
                f"Nothing: it has {job.get_state_display().lower()} already."
                if job.is_terminal
                else "Canceled; its reservation is released."
                if job.state == JobState.QUEUED
                else "Canceled; a clip that still arrives is kept and charged."
                for job in jobs
            ]
            return self._confirm(
                request,
                jobs,
                action="cancel_jobs",
                title="Cancel jobs",
                outcomes=outcomes,
                question=f"Cancel {sum(not job.is_terminal for job in jobs)} of {len(jobs)} jobs?",
                button="Yes, cancel them",
            )
        canceled = sum(job_cancel(job=job, by=acting_user(request)) for job in jobs)
        self.message_user(request, f"Canceled {canceled} of {len(jobs)} jobs.")
        return None

    @team_action(right=Role.EDITOR, description="Retry selected failed or canceled jobs")
    def retry_jobs(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        jobs = list(queryset.select_related("project"))
        retryable = [j for j in jobs if j.state in (JobState.FAILED, JobState.CANCELED)]
        if not confirmed(request):
            outcomes = [
                f"A new attempt, estimated ${job.estimated_cost_usd} against "
                f"{usd(billing_selectors.project_money(job.project).remaining_usd)} left."
                if job in retryable
                else f"Nothing: only failed or canceled jobs are retried, not "
                f"{job.get_state_display().lower()} ones."
                for job in jobs
            ]
            return self._confirm(
                request,
                jobs,
                action="retry_jobs",
                title="Retry jobs",
                outcomes=outcomes,
                question=f"Retry {len(retryable)} of {len(jobs)} jobs?",
                button="Yes, retry them",
            )
        for job in retryable:
            try:
                new = job_retry(job=job, by=acting_user(request))
            except (ValidationError, BudgetExceeded, CreditsShort) as exc:
                text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"Job {short(job)}: {text}", level=messages.WARNING)
            else:
                self.message_user(request, f"Job {short(job)} retried as {short(new)}.")
        return None

    @team_action(right=Role.EDITOR, description="Retry retrieval of selected stuck downloads")
    def retry_retrieval(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        jobs = list(queryset)
        stuck = [
            job
            for job in jobs
            if job.result_url and job.state in (JobState.NEEDS_ATTENTION, JobState.RETRIEVING)
        ]
        if not confirmed(request):
            outcomes = [
                "Its clip is downloaded again, with a new deadline."
                if job in stuck
                else "Nothing: it has no finished clip waiting to be stored."
                for job in jobs
            ]
            return self._confirm(
                request,
                jobs,
                action="retry_retrieval",
                title="Retry retrieval",
                outcomes=outcomes,
                question=f"Retrieve {len(stuck)} of {len(jobs)} clips again?",
                button="Yes, retrieve them again",
            )
        for job in stuck:
            try:
                retried = job_retrieval_retry(job=job, by=acting_user(request))
            except ValidationError as exc:
                self.message_user(
                    request, f"Job {short(job)}: {' '.join(exc.messages)}", level=messages.WARNING
                )
            else:
                note = "retrieving its clip again" if retried else "it changed meanwhile"
                self.message_user(request, f"Job {short(job)}: {note}.")
        return None

    @team_action(right=Role.EDITOR, description="Resolve selected jobs that need attention")
    def resolve_needs_attention(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """For a job the provider may or may not have: adopt the task id an operator found at
        the provider, or confirm that it never accepted the job (failed and released)."""
        jobs = list(queryset)
        unsure = [
            job
            for job in jobs
            if job.state == JobState.NEEDS_ATTENTION
            and not job.result_url
            and not job.provider_task_id
        ]
        if not confirmed(request):
            return confirmation_page(
                self,
                request,
                action="resolve_needs_attention",
                title="Resolve jobs that need attention",
                rows=[
                    (job, "" if job in unsure else "Nothing: the platform knows what became of it.")
                    for job in jobs
                ],
                question="Look each job up at the provider (by its callback URL, which carries "
                "the job's id), then decide.",
                button="Resolve as chosen",
                template="admin/reelforge/resolve_jobs.html",
                unsure=unsure,
            )
        resolved = 0
        for job in unsure:
            decision = request.POST.get(f"resolve-{job.pk}", "leave")
            try:
                if decision == "adopt":
                    task_id = request.POST.get(f"task-{job.pk}", "")
                    done = job_adopt_task(job=job, task_id=task_id, by=acting_user(request))
                elif decision == "not_accepted":
                    done = job_confirm_not_accepted(job=job, by=acting_user(request))
                else:
                    continue
            except ValidationError as exc:
                self.message_user(
                    request, f"Job {short(job)}: {' '.join(exc.messages)}", level=messages.ERROR
                )
                continue
            resolved += done
        self.message_user(
            request, f"Resolved {resolved} of {len(unsure)} jobs that need attention."
        )
        return None

    @team_action(
        right=Role.EDITOR, description="Mark selected jobs that need attention as failed (release)"
    )
    def give_up_jobs(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        jobs = list(queryset)
        if not confirmed(request):
            outcomes = [
                (
                    "Failed; its clip was reported, so it is charged."
                    if job.result_url
                    else "Failed; its reservation is released."
                )
                if job.state == JobState.NEEDS_ATTENTION
                else "Nothing: it does not need attention."
                for job in jobs
            ]
            return self._confirm(
                request,
                jobs,
                action="give_up_jobs",
                title="Mark jobs failed",
                outcomes=outcomes,
                question="A clip that still arrives later is stored and the job succeeds. Go on?",
                button="Yes, mark them failed",
            )
        done = sum(job_give_up(job=job, by=acting_user(request)) for job in jobs)
        self.message_user(request, f"Marked {done} of {len(jobs)} jobs failed.")
        return None


@admin.register(ProviderAccount)
class ProviderAccountAdmin(SuperusersOnly, admin.ModelAdmin):
    list_display = (
        "provider",
        "paused_at",
        "pause_code",
        "pause_reason",
        "credits_left",
        "credits_checked_at",
    )
    readonly_fields = list_display
    actions = ["resume_submissions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Resume submissions")
    def resume_submissions(self, request: HttpRequest, queryset: Any) -> None:
        for account in queryset:
            submissions_resume(account.provider)
        self.message_user(request, "Submissions resumed; held jobs are being sent.")


@admin.register(JobEvent)
class JobEventAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ["job", "created", "from_state", "to_state", "reason"]
    list_filter = ["to_state"]
    list_select_related = ["job"]


@admin.register(Asset)
class AssetAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ["job", "size_bytes", "duration_s", "width", "height", "has_audio", "created"]
    search_fields = ["sha256"]
    list_select_related = ["job"]
    readonly_fields = [f.name for f in Asset._meta.fields]
