"""Teams, their projects and prompts, generation jobs and the clips they produce.

Models hold data rules (constraints, choices, simple properties). Every change of a job's state
goes through `videos.jobs`, which updates conditionally and records a `JobEvent`.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from config.append_only import AppendOnlyModel


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


class Kind(models.TextChoices):
    TEXT_TO_VIDEO = "text_to_video", "Text to video"
    IMAGE_TO_VIDEO = "image_to_video", "Image to video"


class AspectRatio(models.TextChoices):
    LANDSCAPE = "16:9", "16:9 landscape"
    PORTRAIT = "9:16", "9:16 portrait"
    SQUARE = "1:1", "1:1 square"


class Provider(models.TextChoices):
    # The names `videos.providers.PROVIDERS` builds clients for.
    KIE = "kie", "kie.ai"
    KLING = "kling", "Kling API (own account)"


class Mode(models.TextChoices):
    # The official Kling API only; empty means the provider's default (std).
    STANDARD = "std", "Standard (720p)"
    PRO = "pro", "Professional (1080p)"


class Duration(models.IntegerChoices):
    FIVE = 5, "5 seconds"
    TEN = 10, "10 seconds"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    SUBMITTED = "submitted", "Submitted"
    GENERATING = "generating", "Generating"
    RETRIEVING = "retrieving", "Retrieving"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})
# States in which the provider holds a task of ours that has not finished.
IN_FLIGHT_STATES = frozenset({JobState.SUBMITTING, JobState.SUBMITTED, JobState.GENERATING})

PROMPT_MAX_LENGTH = 1000


def _choices_check(field: str, choices: type[models.Choices], name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class Team(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    # Every user has one team of their own from their first sign-in: where their projects go
    # when they name no team.
    personal_for = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="personal_team",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team"),
            _choices_check("role", Role, "membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"


class Invitation(models.Model):
    """An owner's offer of a role in a team; nobody becomes a member without accepting one.

    The invitee is named by username or email, whether or not such a user exists yet: the
    owner learns nothing about who has an account.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    username = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    status = models.CharField(
        max_length=10, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            _choices_check("role", Role, "invitation_role_valid"),
            _choices_check("status", InvitationStatus, "invitation_status_valid"),
            models.CheckConstraint(
                condition=(Q(username="") & ~Q(email="")) | (~Q(username="") & Q(email="")),
                name="invitation_names_username_or_email",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="invitation_status_expires")]

    def __str__(self) -> str:
        return f"{self.username or self.email} to {self.team} as {self.role} ({self.status})"


class Project(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    default_duration = models.PositiveSmallIntegerField(
        choices=Duration.choices, default=Duration.FIVE
    )
    default_aspect_ratio = models.CharField(
        max_length=5, choices=AspectRatio.choices, default=AspectRatio.LANDSCAPE
    )
    default_sound = models.BooleanField(default=False)
    provider = models.CharField(
        max_length=20,
        choices=Provider.choices,
        default=Provider.KIE,
        help_text="Which provider account makes this project's clips.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="project_unique_name_per_team"),
            _choices_check("provider", Provider, "project_provider_valid"),
            _choices_check("default_duration", Duration, "project_default_duration_valid"),
            _choices_check("default_aspect_ratio", AspectRatio, "project_default_aspect_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    """A named prompt whose text is versioned: editing it adds a `PromptVersion`."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="prompts")
    title = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "title"]

    def __str__(self) -> str:
        return self.title

    @property
    def current_version(self) -> PromptVersion | None:
        return self.versions.order_by("-number").first()


class PromptVersion(AppendOnlyModel):
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    text = models.TextField(max_length=PROMPT_MAX_LENGTH)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prompt", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "number"], name="prompt_version_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="prompt_version_number_pos"),
        ]

    def __str__(self) -> str:
        return f"{self.prompt} v{self.number}"


class Batch(models.Model):
    """Many clips from one prompt template: a job for each row of variables, queued together
    (all or none) after every row was checked and the whole was priced."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="batches")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="batches")
    prompt_version = models.ForeignKey(
        PromptVersion, on_delete=models.PROTECT, related_name="batches"
    )
    # Each row as it was given (variables and per-row options), in order; row N is rows[N - 1].
    rows = models.JSONField(default=list)
    # What every row takes unless it says otherwise (None / "": the project's default).
    duration = models.PositiveSmallIntegerField(choices=Duration.choices, null=True, blank=True)
    aspect_ratio = models.CharField(max_length=5, choices=AspectRatio.choices, blank=True)
    sound = models.BooleanField(null=True, blank=True)
    # For rows that set none; the project's provider judges them (the official Kling API only).
    negative_prompt = models.TextField(max_length=2500, blank=True)
    mode = models.CharField(max_length=3, choices=Mode.choices, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text="When every row's job had ended (announced once)."
    )

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"Batch {self.pk} of {self.prompt_version} ({len(self.rows)} rows)"


def _callback_token() -> str:
    return secrets.token_urlsafe(32)


def _source_image_path(job: GenerationJob, filename: str) -> str:
    return f"sources/{job.project_id}/{job.pk}/{filename}"


class GenerationJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The team is the project's; it is stored so idempotency keys can be unique per team.
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="jobs")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    prompt_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    prompt_text = models.TextField(
        max_length=PROMPT_MAX_LENGTH,
        help_text="The exact text sent, kept even if the prompt changes.",
    )
    prompt_variables = models.JSONField(
        default=dict, blank=True, help_text="The values that filled the prompt's placeholders."
    )
    source_image = models.FileField(upload_to=_source_image_path, blank=True, max_length=300)
    source_image_url = models.URLField(blank=True, max_length=2000)
    duration = models.PositiveSmallIntegerField(choices=Duration.choices, default=Duration.FIVE)
    aspect_ratio = models.CharField(
        max_length=5,
        choices=AspectRatio.choices,
        blank=True,
        default=AspectRatio.LANDSCAPE,
        help_text="Text to video only; empty for image to video, whose image decides.",
    )
    sound = models.BooleanField(default=False)
    negative_prompt = models.TextField(
        max_length=2500, blank=True, help_text="What the clip must not show (Kling API only)."
    )
    mode = models.CharField(
        max_length=3,
        choices=Mode.choices,
        blank=True,
        help_text="Kling API only: std (720p) or pro (1080p); empty for the provider's default.",
    )

    state = models.CharField(max_length=20, choices=JobState.choices, default=JobState.QUEUED)
    state_reason = models.TextField(
        blank=True, help_text="Why the job is in its state, for people."
    )
    estimated_cost_usd = models.DecimalField(max_digits=10, decimal_places=4, default=0)

    provider = models.CharField(max_length=20, default="kie")
    # NULL, not "", while unset: unique only among the set ones (see Meta.constraints).
    provider_task_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    callback_token = models.CharField(max_length=64, default=_callback_token, editable=False)
    provider_error_code = models.CharField(max_length=40, blank=True)
    provider_error_message = models.TextField(blank=True)
    provider_credits = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    result_url = models.URLField(blank=True, max_length=2000)
    charge_discrepancy = models.TextField(
        blank=True,
        help_text="What did not add up when it was charged (a reported cost above the list price, "
        "a late charge past the budget); empty when nothing.",
    )

    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 (as above)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="retries"
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    batch = models.ForeignKey(
        Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    batch_row = models.PositiveIntegerField(
        null=True, blank=True, help_text="The batch row (from 1) this job makes."
    )
    canceled_by_user = models.BooleanField(
        default=False, help_text="Canceled after submission; a result that still arrives is kept."
    )

    # Scheduling: when the worker may next try to submit, poll, or give up.
    held_for = models.CharField(
        max_length=20, blank=True, help_text="What a queued job is waiting for, when it waits."
    )
    submit_after = models.DateTimeField(null=True, blank=True)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    # When a queued job was last handed to a worker: the clock hands it again only once this
    # is older than a step's lease (the task was lost) or the job was held and cleared it.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # A retrieving job: when its download may (next) be started. Set a lease ahead while a
    # worker downloads (and renewed as it goes), or a back-off ahead after a failed attempt.
    retrieve_after = models.DateTimeField(null=True, blank=True)
    retrieve_attempts = models.PositiveSmallIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_attempts = models.PositiveIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["project", "state", "created"], name="job_project_state_created"),
            # A project's page lists its newest jobs: read in order, stopping after a page.
            models.Index(fields=["project", "-created"], name="job_project_created"),
            models.Index(fields=["state", "next_poll_at"], name="job_state_next_poll"),
            models.Index(fields=["state", "updated"], name="job_state_updated"),
            # The job list: a team's jobs, newest first (its page cost must not grow with the table).
            models.Index(fields=["team", "-created"], name="job_team_created"),
            # ... and of several teams: newest first, read backwards until a page is full.
            models.Index(fields=["-created"], name="job_created"),
            # The clock: queued jobs oldest first, retrievals due.
            models.Index(fields=["state", "created"], name="job_state_created"),
            models.Index(fields=["state", "retrieve_after"], name="job_state_retrieve_after"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="job_idempotency_key_unique_per_team",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_task_id"],
                condition=Q(provider_task_id__isnull=False),
                name="job_provider_task_unique",
            ),
            _choices_check("kind", Kind, "job_kind_valid"),
            _choices_check("state", JobState, "job_state_valid"),
            _choices_check("duration", Duration, "job_duration_valid"),
            models.CheckConstraint(
                condition=Q(mode="") | Q(mode__in=Mode.values), name="job_mode_valid"
            ),
            # Image to video has none: the image decides its shape.
            models.CheckConstraint(
                condition=Q(kind=Kind.TEXT_TO_VIDEO, aspect_ratio__in=AspectRatio.values)
                | Q(kind=Kind.IMAGE_TO_VIDEO, aspect_ratio=""),
                name="job_aspect_ratio_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind=Kind.TEXT_TO_VIDEO)
                | ~Q(source_image="")
                | ~Q(source_image_url=""),
                name="job_image_to_video_has_image",
            ),
            models.CheckConstraint(
                condition=Q(estimated_cost_usd__gte=0), name="job_estimated_cost_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {str(self.pk)[:8]} ({self.state})"

    def clean(self) -> None:
        if self.project_id and self.team_id and self.project.team_id != self.team_id:
            raise ValidationError({"project": "The project belongs to another team."})
        if self.kind == Kind.IMAGE_TO_VIDEO and not (self.source_image or self.source_image_url):
            raise ValidationError({"source_image": "Image to video needs an image."})

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def callback_path(self) -> str:
        from django.urls import reverse

        return reverse("kie-callback", args=[self.pk, self.callback_token])


class JobEvent(AppendOnlyModel):
    """One state change of a job: the job's history, never edited."""

    job = models.ForeignKey(GenerationJob, on_delete=models.PROTECT, related_name="events")
    created = models.DateTimeField(auto_now_add=True)
    from_state = models.CharField(max_length=20, choices=JobState.choices, blank=True)
    to_state = models.CharField(max_length=20, choices=JobState.choices)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["created", "id"]
        indexes = [
            models.Index(fields=["job", "created"], name="jobevent_job_created"),
            # The shared rate limit counts recent submissions by their events.
            models.Index(fields=["to_state", "created"], name="jobevent_to_state_created"),
        ]
        constraints = [
            _choices_check("to_state", JobState, "jobevent_to_state_valid"),
            models.CheckConstraint(
                condition=Q(from_state="") | Q(from_state__in=JobState.values),
                name="jobevent_from_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} -> {self.to_state}"


def _asset_path(asset: Asset, filename: str) -> str:
    return f"clips/{asset.job.project_id}/{asset.job_id}/{filename}"


class Asset(models.Model):
    """A finished clip in the platform's own storage, with what probing it found."""

    job = models.OneToOneField(GenerationJob, on_delete=models.PROTECT, related_name="asset")
    file = models.FileField(upload_to=_asset_path, max_length=300)
    poster = models.FileField(upload_to=_asset_path, max_length=300, blank=True)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    duration_s = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.FloatField()
    has_audio = models.BooleanField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=Q(size_bytes__gt=0), name="asset_size_positive"),
            models.CheckConstraint(condition=Q(duration_s__gt=0), name="asset_duration_positive"),
        ]

    def __str__(self) -> str:
        return self.file.name or ""


class ProviderAccount(models.Model):
    """Shared state of one provider account, seen by every worker on every host.

    Its row is the lock that serialises submissions (rate limit and in-flight cap), it holds
    the pause switch for account-wide problems, and it caches the credit balance.
    """

    provider = models.CharField(max_length=20, unique=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_code = models.CharField(max_length=40, blank=True)
    pause_reason = models.TextField(blank=True)
    credits_left = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    credits_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{self.provider} ({'paused' if self.is_paused else 'active'})"

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class ApiToken(models.Model):
    """A personal API token with a name. Only a hash of its key is kept: the key is shown once,
    when it is made, and never again (not in the admin, the API or a log)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to tell it.")
    key_sha256 = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...) of {self.user}"


# --- Outbound webhooks -------------------------------------------------------------------------


class WebhookEvent(models.TextChoices):
    JOB_SUCCEEDED = "job.succeeded", "A clip is ready"
    JOB_FAILED = "job.failed", "A job failed"
    JOB_NEEDS_ATTENTION = "job.needs_attention", "A job needs an operator"
    BATCH_COMPLETED = "batch.completed", "Every row of a batch has ended"
    BUDGET_WARNING = "budget.warning", "Spend crossed the budget's warning threshold"
    BUDGET_EXHAUSTED = "budget.exhausted", "Spend reached the budget's cap"
    SUBMISSIONS_PAUSED = "submissions.paused", "Submissions to the provider are paused"
    TEST = "webhook.test", "A test event, sent on request"


class WebhookEndpoint(models.Model):
    """Where a project's events are sent, signed the Standard Webhooks way.

    The signing secret is shown once, when it is made; after a rotation the previous one keeps
    signing beside it until `previous_secret_expires`, so receivers can switch without a gap.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text="The event types sent here.")
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires = models.DateTimeField(null=True, blank=True, editable=False)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="When deliveries started failing (None: they succeed)."
    )
    disabled_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "created", "id"]

    def __str__(self) -> str:
        return f"{self.url} ({self.project})"

    @property
    def secret_hint(self) -> str:
        """Enough of the secret to tell which one a receiver holds, never enough to use it."""
        return f"{self.secret[:10]}..." if self.secret else ""


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One event for one endpoint, tried until the receiver answers 2xx or a day has passed."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # Its `webhook-id`: one message's, on every try and when it is sent again, so a receiver
    # that keeps the ids it has handled can tell a message it already has.
    message_id = models.CharField(max_length=40, db_index=True)
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["created"], name="delivery_created"),  # pruning by age
        ]
        constraints = [_choices_check("status", DeliveryStatus, "delivery_status_valid")]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint.url} ({self.status})"

    @property
    def last_try(self) -> WebhookAttempt | None:
        tries = list(self.tries.all())  # prefetched by the pages that list deliveries
        return tries[-1] if tries else None


class WebhookAttempt(models.Model):
    """What one try to deliver got back (a log: it goes with its endpoint)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    created = models.DateTimeField(auto_now_add=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="None: no answer.")
    duration_ms = models.PositiveIntegerField()
    response_body = models.TextField(blank=True, help_text="Its first 1,000 characters.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.status or self.error} in {self.duration_ms} ms"
