"""`manage.py generate_batch FILE.csv --project ID --prompt-version ID [--yes] [--wait]`: a batch
from a CSV, through the same checks as the API and the portal. It shows the preview (each row's
prompt and price, every error), asks before queueing, and with --wait follows the batch with a
progress bar until every job has ended, then sums up outcomes and cost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any, cast

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from videos import batches
from videos.jobs import BudgetExceeded, CreditsShort
from videos.models import Batch, JobState, PromptVersion

SOUND = {"yes": True, "no": False}


class Command(BaseCommand):
    help = "Queue a clip for each row of a CSV, from a prompt template (see --help)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="UTF-8 CSV; its header names the columns.")
        parser.add_argument("--project", type=int, required=True)
        parser.add_argument("--prompt-version", type=int, required=True)
        parser.add_argument("--duration", type=int, choices=[5, 10])
        parser.add_argument("--aspect-ratio", choices=["16:9", "9:16", "1:1"], default="")
        parser.add_argument("--sound", choices=sorted(SOUND))
        parser.add_argument(
            "--negative-prompt", default="", help="Official Kling API projects only."
        )
        parser.add_argument(
            "--mode", choices=["std", "pro"], default="", help="Official Kling API projects only."
        )
        parser.add_argument("--user", help="Whose batch it is (a username); default: nobody's.")
        parser.add_argument("--yes", action="store_true", help="Queue without asking.")
        parser.add_argument("--wait", action="store_true", help="Follow it until it ends.")
        parser.add_argument("--wait-timeout", type=float, default=3600, help="Seconds.")

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console(file=cast(IO[str], self.stdout), width=120, highlight=False)
        version = self._prompt_version(options["project"], options["prompt_version"])
        try:
            rows = batches.rows_from_csv(Path(options["file"]).read_bytes())
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        arguments = {
            "prompt_version": version,
            "rows": rows,
            "duration": options["duration"],
            "aspect_ratio": options["aspect_ratio"],
            "sound": SOUND.get(options["sound"] or ""),
            "negative_prompt": options["negative_prompt"],
            "mode": options["mode"],
        }
        plan = batches.batch_plan(**arguments)
        self._show(console, plan)
        if not plan.can_queue:
            raise CommandError("Nothing was queued: fix the rows above and run it again.")
        if not options["yes"] and input(
            f"Queue {len(plan.rows)} clips for ${plan.total_usd:.2f}? [y/N] "
        ).strip().lower() not in ("y", "yes"):
            console.print("Nothing was queued.")
            return
        try:
            batch = batches.batch_create(by=self._user(options["user"]), **arguments)
        except (BudgetExceeded, CreditsShort) as exc:
            raise CommandError(str(exc)) from None
        except batches.BatchInvalid as exc:  # something changed since the preview
            self._show(console, exc.plan)
            raise CommandError("Nothing was queued.") from None
        console.print(f"Queued batch {batch.pk}: {len(rows)} clips.")
        if options["wait"]:
            self._follow(console, batch, options["wait_timeout"])

    def _prompt_version(self, project_id: int, version_id: int) -> PromptVersion:
        version = (
            PromptVersion.objects.select_related("prompt__project").filter(pk=version_id).first()
        )
        if version is None or version.prompt.project_id != project_id:
            raise CommandError(f"Project {project_id} has no prompt version {version_id}.")
        return version

    def _user(self, username: str | None) -> Any:
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is named {username!r}.")
        return user

    def _show(self, console: Console, plan: batches.BatchPlan) -> None:
        table = Table(
            "Row", "Prompt", "Price", title=f"{plan.prompt_version}: {len(plan.rows)} rows"
        )
        for row in plan.rows:
            price = f"${row.price_usd:.2f}" if row.price_usd is not None else ""
            table.add_row(str(row.number), row.prompt or "[red]not valid[/red]", price)
        console.print(table)
        for error in plan.errors:
            where = f"row {error.row}, {error.column}" if error.row else error.column
            console.print(f"[red]Error[/red] ({where}): {error.message}")
        left = plan.budget_left_usd
        console.print(
            f"Total: ${plan.total_usd:.2f}"
            + (f"; the budget has ${left:.2f} left this month." if left is not None else ".")
        )
        for refusal in (plan.budget_refusal, plan.balance_refusal):
            if refusal:
                console.print(f"[red]Refused[/red]: {refusal}")

    def _follow(self, console: Console, batch: Batch, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        columns = (
            TextColumn("Batch {task.fields[batch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("jobs", total=len(batch.rows), batch=batch.pk)
            while True:
                progress = batches.batch_progress(batch)
                bar.update(task, completed=progress.done)
                if progress.finished or time.monotonic() > deadline:
                    break
                time.sleep(1)
        outcomes = ", ".join(
            f"{count} {JobState(state).label.lower()}"
            for state, count in sorted(progress.by_state.items())
        )
        console.print(f"Outcomes: {outcomes}. Spent ${progress.spent_usd:.2f}.")
        if not progress.finished:
            raise CommandError(f"Stopped waiting after {timeout:g} s; the batch goes on.")
