"""Spend against budget: a chart of the month by day, a table by project, a CSV of it, and
(for owners) each project's budget."""

from __future__ import annotations

import csv
import datetime
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from billing import selectors as billing_selectors
from billing import services as billing_services
from videos import selectors
from videos.batches import csv_cell
from videos.models import Project, Role
from videos.portal.charts import day_chart
from videos.portal.forms import BudgetForm
from videos.portal.seats import Seat, current_seat, project_seat, signed_in_user


def _month(request: HttpRequest) -> datetime.date:
    month = billing_selectors.month_named(request.GET.get("month"))
    if month is None:
        raise Http404("Give the month as YYYY-MM.")
    return month


def _rows(request: HttpRequest, seat: Seat, month: datetime.date) -> list[dict[str, Any]]:
    projects = list(
        selectors.project_list(user=signed_in_user(request)).filter(team=seat.team).order_by("name")
    )
    money = billing_selectors.projects_money(projects, month=month)
    return [
        {
            "project": project,
            "money": money[project.pk],
            "form": BudgetForm(
                prefix=f"p{project.pk}",
                initial={
                    "monthly_cap_usd": _cap_shown(money[project.pk].cap_usd),
                    "warning_threshold": money[project.pk].warning_threshold,
                },
            ),
        }
        for project in projects
    ]


def _cap_shown(amount: Decimal | None) -> Decimal | None:
    """Dollars and cents, unless the cap was set finer (the API and admin take 4 places): then
    all of it, so saving the form again keeps the cap as it was."""
    if amount is None:
        return None
    cents = amount.quantize(Decimal("0.01"))
    return cents if cents == amount else amount.normalize()


@login_required
@require_GET
def spend_page(request: HttpRequest) -> HttpResponse:
    seat = current_seat(request)
    month = _month(request)
    rows = _rows(request, seat, month)
    by_day = billing_selectors.spend_by_day(
        project_ids=[row["project"].pk for row in rows], month=month
    )
    previous = (month - datetime.timedelta(days=1)).replace(day=1)
    following = (month + datetime.timedelta(days=32)).replace(day=1)
    return render(
        request,
        "portal/spend.html",
        {
            "seat": seat,
            "month": month,
            "previous": previous,
            "following": following if following <= datetime.date.today() else None,
            "rows": rows,
            "chart": day_chart(month, by_day),
            "spent_usd": sum((row["money"].spent_usd for row in rows), Decimal("0")),
        },
    )


@login_required
@require_GET
def spend_csv(request: HttpRequest) -> HttpResponse:
    seat = current_seat(request)
    month = _month(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"reelforge-spend-{seat.team.slug}-{month:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(
        ["month", "project_id", "project", "spent_usd", "reserved_usd", "queued_usd", "cap_usd"]
    )
    for row in _rows(request, seat, month):
        money = row["money"]
        writer.writerow(
            [
                f"{month:%Y-%m}",
                row["project"].pk,
                csv_cell(row["project"].name),
                money.spent_usd,
                money.reserved_usd,
                money.pending_usd,
                "" if money.cap_usd is None else money.cap_usd,
            ]
        )
    return response


@login_required
@require_POST
def budget_set(request: HttpRequest, project_id: int) -> HttpResponse:
    project, seat = project_seat(request, project_id)
    seat.require(Role.OWNER)
    form = BudgetForm(request.POST, prefix=f"p{project.pk}")
    if form.is_valid():
        try:
            _budget_save(project, form.cleaned_data)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, f"{project.name}: {message}")
        else:
            messages.success(request, f"{project.name}: budget saved.")
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"{project.name}: {error}")
    month = billing_selectors.month_named(request.POST.get("month"))
    return redirect(reverse("portal:spend") + (f"?month={month:%Y-%m}" if month else ""))


def _budget_save(project: Project, data: dict[str, Any]) -> None:
    billing_services.budget_set(
        project=project,
        monthly_cap_usd=data["monthly_cap_usd"],
        warning_threshold=data["warning_threshold"],
    )
