"""Settings of the pipeline, back-off, and the deadlines a job is held to."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings

from videos.models import (
    GenerationJob,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def conf(name: str) -> Any:
    pipeline: Mapping[str, Any] = settings.PIPELINE  # looked up by a name only known at run time
    return pipeline[name]


def backoff(attempt: int, *, initial: float, cap: float) -> float:
    return float(min(initial * 2 ** max(attempt - 1, 0), cap))


def deadline(job: GenerationJob) -> datetime.datetime:
    return (job.submitted_at or job.created) + datetime.timedelta(minutes=conf("DEADLINE_MINUTES"))
