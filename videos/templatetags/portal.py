"""Small presentation helpers for the portal's templates."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

from videos.models import TERMINAL_STATES, JobState

register = template.Library()

# How a job's arrival in each state reads in its timeline.
STATE_PHRASES = {
    JobState.QUEUED: "Queued",
    JobState.SUBMITTING: "Being sent to the provider",
    JobState.SUBMITTED: "Accepted by the provider",
    JobState.GENERATING: "The provider is making the clip",
    JobState.RETRIEVING: "Copying the finished clip into storage",
    JobState.SUCCEEDED: "Ready",
    JobState.FAILED: "Failed",
    JobState.CANCELED: "Canceled",
    JobState.NEEDS_ATTENTION: "Waiting for an operator",
}


@register.filter
def ago(moment: datetime.datetime | None) -> SafeString | str:
    """ "3 minutes ago", with the exact time on hover (and for machines)."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    exact = local.strftime("%Y-%m-%d %H:%M:%S %Z")
    delta = timezone.now() - moment
    words = "just now" if delta.total_seconds() < 60 else f"{timesince(moment).split(',')[0]} ago"
    return format_html('<time datetime="{}" title="{}">{}</time>', local.isoformat(), exact, words)


@register.filter
def usd(amount: Decimal | float | None) -> str:
    if amount is None:
        return "\u2013"  # an en dash: no amount
    return f"${Decimal(amount).quantize(Decimal('0.01')):,}"


@register.filter
def state_phrase(state: str) -> str:
    return STATE_PHRASES.get(JobState(state), state) if state in JobState.values else state


@register.filter
def is_final(state: str) -> bool:
    return state in TERMINAL_STATES or state == JobState.NEEDS_ATTENTION


@register.filter
def percent(part: Decimal | None, whole: Decimal | None) -> int:
    """`part` as a whole percentage of `whole`, 0 to 100 (for bars)."""
    if not whole or part is None:
        return 0
    return max(0, min(100, int(Decimal(part) * 100 / Decimal(whole))))


@register.filter
def megabytes(size: int | None) -> str:
    return "" if size is None else f"{size / 1_000_000:.1f} MB"


@register.filter
def plus(amount: Decimal | None, other: Decimal | None) -> Decimal:
    """Money added exactly (Django's `add` filter adds whole numbers first)."""
    return Decimal(amount or 0) + Decimal(other or 0)
