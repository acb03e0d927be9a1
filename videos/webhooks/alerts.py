"""Budget alerts, announced: billing records each threshold a project crosses once a month
(`billing.services.budget_alerts_record`, in the transaction that commits the money); here its
owners get an email and the project's endpoints the `budget.warning` or `budget.exhausted`
event, once."""

from __future__ import annotations

import logging
from typing import Any

from django.core.mail import send_mail
from django.db import transaction

from billing import services as billing
from videos.models import Membership, Project, Role, WebhookEvent
from videos.webhooks.events import event_record

logger = logging.getLogger(__name__)

# A budget alert's level (billing's `AlertLevel`) -> the event it fires.
EVENTS = {"warning": WebhookEvent.BUDGET_WARNING, "exhausted": WebhookEvent.BUDGET_EXHAUSTED}


def alerts_announce() -> int:
    """Tell owners of every alert not told yet; returns how many were told."""
    told = 0
    for alert in billing.budget_alerts_unannounced():
        with transaction.atomic():
            if not billing.budget_alert_announced(alert):
                continue  # another worker told it
            _announce(alert)
            told += 1
    return told


def _announce(alert: Any) -> None:  # a billing BudgetAlert
    project = Project.objects.select_related("team").get(pk=alert.project_id)
    exhausted = alert.level == "exhausted"
    headline = (
        f"{project} has used its ${alert.cap_usd:.2f} budget for {alert.month:%B %Y}"
        if exhausted
        else f"{project} has used ${alert.spent_usd:.2f} of its ${alert.cap_usd:.2f} budget "
        f"for {alert.month:%B %Y}"
    )
    event_record(
        EVENTS[alert.level],
        {
            "project": project.pk,
            "month": f"{alert.month:%Y-%m}",
            "spent_and_reserved_usd": f"{alert.spent_usd:.2f}",
            "cap_usd": f"{alert.cap_usd:.2f}",
        },
        project_id=project.pk,
    )
    owners = list(
        Membership.objects.filter(team_id=project.team_id, role=Role.OWNER)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    consequence = (
        "New clips wait in the queue until the budget is raised or the month ends."
        if exhausted
        else "Clips go on until the cap is reached; then they wait."
    )
    if owners:
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Reelforge: {headline}",
                message=f"{headline} (spent and reserved).\n\n{consequence}\n"
                "Owners can change the budget on the portal's Spend page.",
                from_email=None,
                recipient_list=owners,
                fail_silently=True,
            )
        )
    logger.info("Budget alert for project %s: %s", project.pk, alert.level)


def alerts_recorded(**kwargs: object) -> None:
    """Billing recorded new alerts: a worker announces them now, not at the next sweep."""
    from django_q.tasks import async_task

    async_task("videos.tasks.announce_budget_alerts", task_name="budget-alerts")
