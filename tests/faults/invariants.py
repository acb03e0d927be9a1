"""What every fault scenario must end with: nothing lost, nothing paid twice.

`assert_nothing_lost` compares three records that are kept apart on purpose: the platform's
jobs, its ledger, and the provider's own list of the tasks it created (the simulator's
`/_control/tasks`, which the platform cannot write to).
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billing.models import Budget, EntryKind, LedgerEntry
from billing.selectors import job_ledger_total, project_money
from videos.models import Asset, GenerationJob, JobState

S = JobState
FINAL = {S.SUCCEEDED, S.FAILED, S.CANCELED, S.NEEDS_ATTENTION}


@dataclass
class Figures:
    """What a scenario ended with, printed for docs/reliability.md."""

    jobs: int
    states: dict[str, int]
    create_task_calls: int  # every createTask received, refused ones (429, 5xx...) included
    tasks_created: int  # createTask calls the provider accepted
    charges: int
    charged_usd: Decimal
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self, scenario: str) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"[faults] {scenario}: jobs={self.jobs} states={self.states} "
            f"createTask_calls={self.create_task_calls} tasks_created={self.tasks_created} "
            f"charges={self.charges} charged_usd={self.charged_usd} {extra}".rstrip()
        )


def job_of_callback(url: str | None, jobs: list[GenerationJob]) -> GenerationJob | None:
    if not url:
        return None
    path = urllib.parse.urlsplit(url).path
    return next((job for job in jobs if job.callback_path == path), None)


def assert_nothing_lost(simulator: Any, scenario: str, **extra: Any) -> Figures:
    """Fail unless, for every job: it is final, or needs attention with a reason a person can
    read; the provider created at most one task for it (exactly one, the one it names, once it
    knows a task id; exactly one if it succeeded); a succeeded job is charged once, its price,
    and has its stored clip, and no other job is charged or has a clip; every reservation is
    released except a needs-attention job's (kept until someone decides); the ledger's spend is
    the sum of the charges and no budget is over its cap. Prints and returns the figures."""
    jobs = list(GenerationJob.objects.select_related("project").order_by("pk"))
    tasks = simulator.tasks()
    stats = simulator.stats()
    problems: list[str] = []

    tasks_of: dict[uuid.UUID, list[dict[str, Any]]] = {job.pk: [] for job in jobs}
    for task in tasks:
        owner = job_of_callback(task["callBackUrl"], jobs)
        if owner is None:
            problems.append(f"task {task['taskId']} belongs to no job ({task['callBackUrl']})")
        else:
            tasks_of[owner.pk].append(task)

    charged = Decimal("0")
    charges = 0
    for job in jobs:
        name = f"job {job.pk} ({job.state}: {job.state_reason!r})"
        if job.state not in FINAL:
            problems.append(f"{name} is not final")
        if job.state == S.NEEDS_ATTENTION and not job.state_reason.strip():
            problems.append(f"{name} needs attention without a reason")
        its_tasks = tasks_of[job.pk]
        if len(its_tasks) > 1:
            problems.append(f"{name} was sent {len(its_tasks)} times: {its_tasks}")
        if job.provider_task_id and [t["taskId"] for t in its_tasks] != [job.provider_task_id]:
            problems.append(f"{name} names task {job.provider_task_id}, provider has {its_tasks}")
        if job.state == S.SUCCEEDED and len(its_tasks) != 1:
            problems.append(f"{name} succeeded with {len(its_tasks)} provider tasks")

        totals = job_ledger_total(job)
        entries = Counter(
            LedgerEntry.objects.filter(job=job).values_list("kind", flat=True).order_by()
        )
        has_asset = Asset.objects.filter(job=job).exists()
        if job.state == S.SUCCEEDED:
            if entries[EntryKind.CHARGE] != 1:
                problems.append(f"{name} has {entries[EntryKind.CHARGE]} charges")
            elif totals[EntryKind.CHARGE] != job.estimated_cost_usd:
                problems.append(
                    f"{name} charged {totals[EntryKind.CHARGE]}, price {job.estimated_cost_usd}"
                )
            if not has_asset:
                problems.append(f"{name} succeeded without a clip")
            else:
                asset = job.asset
                if asset.file.size != asset.size_bytes or asset.size_bytes == 0:
                    problems.append(f"{name}: stored {asset.file.size} of {asset.size_bytes} bytes")
        else:
            if entries[EntryKind.CHARGE]:
                problems.append(f"{name} is charged {totals[EntryKind.CHARGE]} without a clip")
            if has_asset:
                problems.append(f"{name} has a clip")
        if (
            job.state != S.NEEDS_ATTENTION
            and totals[EntryKind.RELEASE] != totals[EntryKind.RESERVE]
        ):
            problems.append(
                f"{name} holds a reservation: reserved {totals[EntryKind.RESERVE]}, "
                f"released {totals[EntryKind.RELEASE]}"
            )
        charged += totals[EntryKind.CHARGE]
        charges += entries[EntryKind.CHARGE]

    for budget in Budget.objects.select_related("project"):
        money = project_money(budget.project)
        project_charges = sum(
            (
                totals[EntryKind.CHARGE]
                for totals in (
                    job_ledger_total(job) for job in jobs if job.project_id == budget.project_id
                )
            ),
            Decimal("0"),
        )
        adjustments = sum(
            LedgerEntry.objects.filter(
                project=budget.project, kind=EntryKind.ADJUSTMENT
            ).values_list("amount", flat=True),
            Decimal("0"),
        )
        if money.spent_usd != project_charges + adjustments:
            problems.append(
                f"project {budget.project_id}: ledger spend {money.spent_usd}, "
                f"charges {project_charges}"
            )
        if money.spent_usd + money.reserved_usd > budget.monthly_cap_usd:
            problems.append(
                f"project {budget.project_id} is over its cap: spent {money.spent_usd} + "
                f"reserved {money.reserved_usd} > {budget.monthly_cap_usd}"
            )

    assert not problems, f"{scenario}: " + "\n".join(problems)
    figures = Figures(
        jobs=len(jobs),
        states=dict(Counter(job.state for job in jobs)),
        create_task_calls=stats["create_task_calls"],
        tasks_created=len(tasks),
        charges=charges,
        charged_usd=charged,
        extra=extra,
    )
    print(figures.line(scenario))
    return figures


class Stopwatch:
    """Seconds since it was made (or last reset), for the figures a scenario reports."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def reset(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 1)
