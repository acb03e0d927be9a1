"""Batches: many clips from one prompt template, a job for each row of variables.

Every row is checked and priced before anything is queued (`batch_plan`); the whole is checked
against the project's budget and the provider balance; then all rows are queued at once, or
none (`batch_create`). A row's columns are the template's variables, except the options a row
may set for itself: `duration`, `aspect_ratio`, `sound`, and an image (`image_url`, or in the
portal `image`, the name of an uploaded file).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from billing.selectors import charged_usd, job_charge_subquery, project_money
from videos.jobs import (
    BudgetExceeded,
    CreditsShort,
    budget_check,
    gate,
    job_cancel,
    job_prepare,
    job_retry,
    jobs_queue,
)
from videos.jobs.create import JobSpec
from videos.models import Batch, GenerationJob, JobState, Kind, PromptVersion
from videos.selectors import SETTLED_STATES

if TYPE_CHECKING:
    from django.contrib.auth.models import User

BATCH_MAX_ROWS = 500
CSV_MAX_BYTES = 2 * 1024 * 1024
# Columns a row sets its job's options with (any other column is a template variable).
OPTION_COLUMNS = (
    "duration",
    "aspect_ratio",
    "sound",
    "image_url",
    "image",
    "negative_prompt",
    "mode",
)
TRUE_WORDS = {"true", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "no", "n", "0", "off"}


class BatchInvalid(Exception):
    """Some rows cannot be queued (or the input is not a batch at all); see `plan.errors`."""

    def __init__(self, plan: BatchPlan) -> None:
        super().__init__(f"{len(plan.errors)} problems in the batch")
        self.plan = plan


@dataclass(frozen=True)
class RowError:
    row: int  # from 1; 0 for the batch as a whole
    column: str
    message: str


@dataclass
class RowCheck:
    number: int
    values: dict[str, Any]
    errors: list[RowError] = field(default_factory=list)
    spec: JobSpec | None = None

    @property
    def prompt(self) -> str:
        return self.spec.prompt_text if self.spec else ""

    @property
    def price_usd(self) -> Decimal | None:
        return self.spec.estimated_cost_usd if self.spec else None


@dataclass
class BatchPlan:
    """What a batch would queue: each row checked and priced, and whether money allows it."""

    prompt_version: PromptVersion
    rows: list[RowCheck]
    duration: int | None
    aspect_ratio: str
    sound: bool | None
    negative_prompt: str = ""
    mode: str = ""
    problems: list[RowError] = field(default_factory=list)  # of the batch as a whole
    budget_refusal: str = ""
    balance_refusal: str = ""
    budget_left_usd: Decimal | None = None

    @property
    def errors(self) -> list[RowError]:
        return self.problems + [error for row in self.rows for error in row.errors]

    @property
    def total_usd(self) -> Decimal:
        return sum((row.spec.estimated_cost_usd for row in self.rows if row.spec), Decimal("0"))

    @property
    def variables(self) -> list[str]:
        from videos.prompt_templates import variables_of

        return variables_of(self.prompt_version.text)

    @property
    def can_queue(self) -> bool:
        return not self.errors and not self.budget_refusal and not self.balance_refusal


def rows_from_csv(data: bytes | str) -> list[dict[str, str]]:
    """A CSV's rows as {column: value}; the header row names the columns.

    Raises ValidationError({"file": ...}) for a file that is not UTF-8 CSV with a header.
    """
    if isinstance(data, bytes):
        if len(data) > CSV_MAX_BYTES:
            raise ValidationError({"file": f"The CSV is larger than {CSV_MAX_BYTES} bytes."})
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"file": "Save the CSV as UTF-8 text."}) from None
    reader = csv.DictReader(io.StringIO(data, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    if not header or not any(header):
        raise ValidationError({"file": "The CSV needs a header row naming its columns."})
    if len(set(header)) != len(header) or "" in header:
        raise ValidationError({"file": "Every column of the header needs its own name."})
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            if None in row:
                raise ValidationError(
                    {"file": f"Line {reader.line_num} has more cells than the header has columns."}
                )
            if any((value or "").strip() for value in row.values()):  # skip blank lines
                rows.append({key: (value or "").strip() for key, value in row.items()})
    except csv.Error as exc:
        raise ValidationError(
            {"file": f"Line {reader.line_num} is not valid CSV: {exc}."}
        ) from None
    return rows


def _option_errors(number: int, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[RowError]]:
    """The options a row sets for itself, parsed, and what is wrong with them."""
    options: dict[str, Any] = {}
    errors = []
    duration = _text(values.get("duration"))
    if duration:
        if duration.isdigit():
            options["duration"] = int(duration)
        else:
            errors.append(RowError(number, "duration", "Give the duration in seconds: 5 or 10."))
    sound = values.get("sound")
    if isinstance(sound, bool):
        options["sound"] = sound
    elif _text(sound):
        word = _text(sound).lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            options["sound"] = word in TRUE_WORDS
        else:
            errors.append(RowError(number, "sound", "Give sound as yes or no."))
    if _text(values.get("aspect_ratio")):
        options["aspect_ratio"] = _text(values.get("aspect_ratio"))
    for name in ("image_url", "negative_prompt", "mode"):
        if _text(values.get(name)):
            options[name] = _text(values.get(name))
    return options, errors


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


# A row's problems are reported under the column a person would fix.
FIELD_COLUMNS = {"prompt": "prompt", "prompt_version": "prompt", "image": "image"}


def batch_plan(
    *,
    prompt_version: PromptVersion,
    rows: list[Mapping[str, Any]],
    duration: int | None = None,
    aspect_ratio: str = "",
    sound: bool | None = None,
    negative_prompt: str = "",
    mode: str = "",
    images: Mapping[str, UploadedFile] | None = None,
) -> BatchPlan:
    """Check and price every row, and the whole against the budget and the balance; save
    nothing. The shared options apply to rows that set none. Image URLs are resolved here:
    call it outside any transaction."""
    plan = BatchPlan(
        prompt_version=prompt_version,
        rows=[],
        duration=duration,
        aspect_ratio=aspect_ratio,
        sound=sound,
        negative_prompt=negative_prompt,
        mode=mode,
    )
    if not rows:
        plan.problems.append(RowError(0, "rows", "The batch has no rows."))
    if len(rows) > BATCH_MAX_ROWS:
        plan.problems.append(
            RowError(0, "rows", f"A batch has at most {BATCH_MAX_ROWS} rows, not {len(rows)}.")
        )
        return plan
    project = prompt_version.prompt.project
    for number, values in enumerate(rows, start=1):
        check = RowCheck(number=number, values=dict(values))
        plan.rows.append(check)
        options, check.errors = _option_errors(number, values)
        image = None
        if _text(values.get("image")):
            image = (images or {}).get(_text(values.get("image")))
            if image is None:
                check.errors.append(
                    RowError(number, "image", f"No uploaded image is named {values['image']!r}.")
                )
        variables = {
            key: _text(value) for key, value in values.items() if key not in OPTION_COLUMNS
        }
        has_image = image is not None or "image_url" in options
        inputs: dict[str, Any] = {
            "project": project,
            "kind": Kind.IMAGE_TO_VIDEO if has_image else Kind.TEXT_TO_VIDEO,
            "prompt_version": prompt_version,
            "variables": variables,
            "duration": options.get("duration", duration),
            "sound": options.get("sound", sound),
            "image": image,
            "image_url": options.get("image_url", ""),
            # The project's provider judges these, as for a single job.
            "negative_prompt": options.get("negative_prompt", negative_prompt),
            "mode": options.get("mode", mode),
        }
        if not has_image:
            inputs["aspect_ratio"] = options.get("aspect_ratio") or aspect_ratio or None
        elif options.get("aspect_ratio"):
            inputs["aspect_ratio"] = options["aspect_ratio"]  # refused: the image decides
        if check.errors:
            continue
        try:
            check.spec = job_prepare(**inputs)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                column = name.removeprefix("variables.")
                column = FIELD_COLUMNS.get(column, column)
                check.errors.extend(RowError(number, column, message) for message in messages)
    specs = [row.spec for row in plan.rows if row.spec is not None]
    money = project_money(project)
    plan.budget_left_usd = money.remaining_usd
    if specs and not plan.errors:
        try:
            budget_check(project, plan.total_usd, jobs=len(specs), money=money)
        except BudgetExceeded as exc:
            plan.budget_refusal = str(exc)
        balance = gate.balance_for(
            credits_needed=sum(spec.credits for spec in specs), provider=project.provider
        )
        if not balance.covers:
            plan.balance_refusal = balance.message
    return plan


def batch_create(
    *,
    by: User | None,
    prompt_version: PromptVersion,
    rows: list[Mapping[str, Any]],
    duration: int | None = None,
    aspect_ratio: str = "",
    sound: bool | None = None,
    negative_prompt: str = "",
    mode: str = "",
    images: Mapping[str, UploadedFile] | None = None,
    wait_for_credits: bool = False,
) -> Batch:
    """Queue a job for every row, or none: raises BatchInvalid (with every row's errors),
    BudgetExceeded or CreditsShort, having saved nothing."""
    plan = batch_plan(
        prompt_version=prompt_version,
        rows=rows,
        duration=duration,
        aspect_ratio=aspect_ratio,
        sound=sound,
        negative_prompt=negative_prompt,
        mode=mode,
        images=images,
    )
    if plan.errors:
        raise BatchInvalid(plan)
    if plan.budget_refusal:
        raise BudgetExceeded(plan.budget_refusal)
    if plan.balance_refusal and not wait_for_credits:
        raise CreditsShort(plan.balance_refusal)
    project = prompt_version.prompt.project
    specs = [row.spec for row in plan.rows if row.spec is not None]
    with transaction.atomic():
        batch = Batch.objects.create(
            team_id=project.team_id,
            project=project,
            prompt_version=prompt_version,
            rows=[_storable(row.values) for row in plan.rows],
            duration=duration,
            aspect_ratio=aspect_ratio,
            sound=sound,
            negative_prompt=negative_prompt,
            mode=mode,
            created_by=by,
        )
        # The budget and balance are checked again under their locks (`jobs_queue`).
        jobs = jobs_queue(specs, by=by, wait_for_credits=wait_for_credits)
        for number, job in enumerate(jobs, start=1):
            job.batch, job.batch_row = batch, number
        GenerationJob.objects.bulk_update(jobs, ["batch", "batch_row"])
    return batch


def _storable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if isinstance(value, str | int | bool)}


# --- A batch after it was queued ---------------------------------------------------------------

# A row is done when its job will not move again by itself: what a job waiter stops at.
FINAL_STATES = SETTLED_STATES


def batch_jobs(batch: Batch) -> list[GenerationJob]:
    """Each row's newest attempt (the one not retried), in row order."""
    return list(
        batch.jobs.filter(retries__isnull=True)
        .select_related("asset")
        .annotate(cost_usd=job_charge_subquery())
        .order_by("batch_row")
    )


@dataclass(frozen=True)
class Progress:
    rows: int
    done: int  # rows whose job has ended (or waits for an operator)
    by_state: dict[str, int]
    spent_usd: Decimal  # charges of every attempt so far

    @property
    def finished(self) -> bool:
        return self.done == self.rows


def batch_progress(batch: Batch, jobs: list[GenerationJob] | None = None) -> Progress:
    jobs = batch_jobs(batch) if jobs is None else jobs
    by_state: dict[str, int] = {}
    for job in jobs:
        by_state[job.state] = by_state.get(job.state, 0) + 1
    return Progress(
        rows=len(batch.rows),
        done=sum(by_state.get(state, 0) for state in FINAL_STATES),
        by_state=by_state,
        spent_usd=charged_usd(jobs=batch.jobs.all()),
    )


def batch_cancel_remaining(*, batch: Batch, by: User | None) -> int:
    """Cancel every row whose job has not ended; returns how many were canceled."""
    return sum(
        job_cancel(job=job, by=by) for job in batch_jobs(batch) if job.state not in FINAL_STATES
    )


def batch_retry_failed(*, batch: Batch, by: User | None) -> tuple[list[GenerationJob], str]:
    """A new attempt of every failed row. Returns the new jobs, and why the rest could not be
    retried (the budget or the balance ran out), or ""."""
    retried = []
    for job in batch_jobs(batch):
        if job.state != JobState.FAILED:
            continue
        try:
            retried.append(job_retry(job=job, by=by))
        except (BudgetExceeded, CreditsShort, ValidationError) as exc:
            message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
            return retried, f"Row {job.batch_row}: {message}"
    return retried, ""


def batch_export_rows(batch: Batch, clip_url: Any) -> Iterator[list[str]]:
    """The batch as CSV rows: the header, then per row its variables, job, state, cost and a
    link to its clip (`clip_url(job)`, or "" without a clip)."""
    from videos.prompt_templates import variables_of

    names = variables_of(batch.prompt_version.text)
    yield ["row", *names, "job_id", "state", "cost_usd", "clip_url"]
    for job in batch_jobs(batch):
        values = batch.rows[(job.batch_row or 1) - 1]
        charged = getattr(job, "cost_usd", None)
        yield [
            str(job.batch_row),
            *[csv_cell(str(values.get(name, ""))) for name in names],
            str(job.pk),
            job.state,
            f"{charged:.2f}" if charged else "",
            clip_url(job) if hasattr(job, "asset") else "",
        ]


def csv_cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
