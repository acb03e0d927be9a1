"""Print the job state machine as a Mermaid diagram (the README's "How a job moves")."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from videos.jobs.states import mermaid


class Command(BaseCommand):
    help = "Print every allowed move of a job, and who may make it, as a Mermaid state diagram."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(mermaid())
