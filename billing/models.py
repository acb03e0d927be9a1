"""Prices, budgets and the append-only ledger that every cent of spend is derived from.

Projects and jobs are `videos`' tables, named here by string so billing imports nothing of it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from config.append_only import AppendOnlyModel


class Digits(TypedDict):
    """A DecimalField's size, passed as keyword arguments (`**MONEY`)."""

    max_digits: int
    decimal_places: int


MONEY: Digits = {"max_digits": 12, "decimal_places": 4}
WARNING_THRESHOLD_DEFAULT = Decimal("0.80")
WARNING_THRESHOLD_HELP = "Warn when this fraction of the cap is spent or reserved (0.80 = 80%)."


class ClipDuration(models.IntegerChoices):
    """The clip lengths that are priced: the same as `videos.models.Duration` (a test checks)."""

    FIVE = 5, "5 seconds"
    TEN = 10, "10 seconds"


class Price(models.Model):
    """What one clip costs from `effective_from` on, until a newer row for the same clip."""

    provider = models.CharField(max_length=20, default="kie")
    model = models.CharField(max_length=60, default="kling-2.6")
    duration = models.PositiveSmallIntegerField(choices=ClipDuration.choices)
    sound = models.BooleanField()
    usd = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0"))])
    credits = models.PositiveIntegerField(help_text="What the provider reports for this clip.")
    effective_from = models.DateField()

    class Meta:
        ordering = ["provider", "model", "duration", "sound", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "duration", "sound", "effective_from"],
                name="price_unique_per_clip_and_date",
            ),
            models.CheckConstraint(condition=Q(usd__gte=0), name="price_usd_not_negative"),
            models.CheckConstraint(
                condition=Q(duration__in=ClipDuration.values), name="price_duration_valid"
            ),
        ]

    def __str__(self) -> str:
        sound = "sound" if self.sound else "silent"
        return f"{self.model} {self.duration}s {sound}: ${self.usd} from {self.effective_from}"

    @property
    def usd_per_credit(self) -> Decimal:
        return self.usd / self.credits if self.credits else Decimal("0")


class Budget(models.Model):
    """A project's hard monthly cap; jobs that would pass it wait in `queued`."""

    project = models.OneToOneField(
        "videos.Project", on_delete=models.CASCADE, related_name="budget"
    )
    monthly_cap_usd = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0"))])
    warning_threshold = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=WARNING_THRESHOLD_DEFAULT,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("1"))],
        help_text=WARNING_THRESHOLD_HELP,
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(monthly_cap_usd__gte=0), name="budget_cap_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(warning_threshold__gt=0, warning_threshold__lte=1),
                name="budget_warning_threshold_fraction",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project}: ${self.monthly_cap_usd} a month"


class AlertLevel(models.TextChoices):
    WARNING = "warning", "Warning threshold crossed"
    EXHAUSTED = "exhausted", "Cap reached"


class BudgetAlert(models.Model):
    """A budget threshold a project crossed in a month: each is announced once a month."""

    project = models.ForeignKey("videos.Project", on_delete=models.CASCADE, related_name="+")
    month = models.DateField(help_text="The month's first day.")
    level = models.CharField(max_length=10, choices=AlertLevel.choices)
    spent_usd = models.DecimalField(**MONEY, help_text="Spent and reserved when it was crossed.")
    cap_usd = models.DecimalField(**MONEY)
    created = models.DateTimeField(auto_now_add=True)
    announced_at = models.DateTimeField(
        null=True, blank=True, help_text="When owners were told (email and webhooks)."
    )

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "month", "level"], name="budget_alert_once_a_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project}: {self.get_level_display()} in {self.month:%Y-%m}"


class EntryKind(models.TextChoices):
    RESERVE = "reserve", "Reserve"  # money set aside before submitting
    RELEASE = "release", "Release"  # a reservation given back (settled, failed or canceled)
    CHARGE = "charge", "Charge"  # money actually spent
    ADJUSTMENT = "adjustment", "Adjustment"  # an operator's correction to spend (may be negative)


class LedgerEntry(AppendOnlyModel):
    """One movement of money. Amounts are positive except adjustments; totals are sums.

    spent = charges + adjustments; reserved = reserves - releases.
    """

    project = models.ForeignKey(
        "videos.Project", on_delete=models.PROTECT, related_name="ledger_entries"
    )
    job = models.ForeignKey(
        "videos.GenerationJob",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_entries",
    )
    kind = models.CharField(max_length=12, choices=EntryKind.choices)
    amount = models.DecimalField(**MONEY)
    note = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["project", "created"], name="ledger_project_created"),
            models.Index(fields=["job", "kind"], name="ledger_job_kind"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=EntryKind.values), name="ledger_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind=EntryKind.ADJUSTMENT) | Q(amount__gte=0),
                name="ledger_amount_positive_unless_adjustment",
            ),
            # A job is reserved at most once and settled at most once: a duplicated callback or
            # a racing poll can never charge twice.
            models.UniqueConstraint(
                fields=["job", "kind"],
                condition=Q(job__isnull=False, kind__in=["reserve", "release", "charge"]),
                name="ledger_one_entry_per_job_and_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ${self.amount} ({self.project})"
