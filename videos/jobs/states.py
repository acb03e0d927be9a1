"""A job's states, every move between them and who may make it, and the one way to make a move:
a conditional UPDATE and a JobEvent, or nothing at all.

`MOVES` is the state machine. `transition()` refuses anything not in it, and nothing else
writes a job's `state` (a test reads the code to make sure). `mermaid()` draws it; the README's
diagram is its output (`python manage.py job_states`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from videos.models import GenerationJob, JobEvent, JobState
from videos.webhooks.events import job_moved

S = JobState
# A result may still arrive for these: the provider holds (or may hold) a task of ours.
AWAITING_RESULT_STATES = (S.SUBMITTING, S.SUBMITTED, S.GENERATING, S.NEEDS_ATTENTION)
# A job failed with one of these codes was given up on, not refused: a clip may still come.
GIVEN_UP_CODES = {"timeout", "given_up"}
# `held_for` of a queued job whose reservation the budget refused.
HELD_FOR_BUDGET = "budget"


class Party(enum.Enum):
    """Who moves a job."""

    WORKER = "worker"  # a worker submitting or retrieving it
    PROVIDER = "provider"  # news of its task from the provider (a callback or a poll)
    SWEEP = "sweep"  # the periodic sweep: deadlines, and work a dead worker left
    PERSON = "person"  # an editor or an operator, through the API, the portal or the admin


W, P, SW, PE = Party.WORKER, Party.PROVIDER, Party.SWEEP, Party.PERSON

# (from, to) -> who may make the move.
MOVES: dict[tuple[str, str], frozenset[Party]] = {
    (S.QUEUED, S.SUBMITTING): frozenset({W}),  # a submission slot was claimed
    (S.QUEUED, S.FAILED): frozenset({W, SW}),  # image refused; its month's budget never came
    (S.QUEUED, S.CANCELED): frozenset({PE}),
    (S.SUBMITTING, S.SUBMITTED): frozenset({W, P}),  # createTask answered, or a callback did
    # Held (rate limit, pause, a retryable refusal), or the sweep found that a provider which
    # keeps our reference never received it.
    (S.SUBMITTING, S.QUEUED): frozenset({W, SW}),
    (S.SUBMITTING, S.FAILED): frozenset({W, P}),  # refused for good
    (S.SUBMITTING, S.NEEDS_ATTENTION): frozenset({W, SW}),  # no answer: it may exist
    (S.SUBMITTING, S.RETRIEVING): frozenset({P}),  # done before createTask's answer was saved
    (S.SUBMITTING, S.CANCELED): frozenset({PE}),
    (S.SUBMITTED, S.GENERATING): frozenset({P}),
    (S.SUBMITTED, S.RETRIEVING): frozenset({P}),
    (S.SUBMITTED, S.FAILED): frozenset({P, SW}),  # generation failed; the deadline passed
    (S.SUBMITTED, S.CANCELED): frozenset({PE}),
    (S.GENERATING, S.RETRIEVING): frozenset({P}),
    (S.GENERATING, S.FAILED): frozenset({P, SW}),
    (S.GENERATING, S.CANCELED): frozenset({PE}),
    # Its task was found and confirmed (or createTask's late answer came after all).
    (S.NEEDS_ATTENTION, S.SUBMITTED): frozenset({W, P, PE}),
    # The provider reported the clip; or a person retries a download that could not be stored.
    (S.NEEDS_ATTENTION, S.RETRIEVING): frozenset({P, PE}),
    (S.NEEDS_ATTENTION, S.FAILED): frozenset({P, PE}),  # the task failed; someone gave up
    (S.RETRIEVING, S.SUCCEEDED): frozenset({W}),
    (S.RETRIEVING, S.NEEDS_ATTENTION): frozenset({W, SW}),  # the clip could not be stored
    (S.FAILED, S.RETRIEVING): frozenset({P}),  # a clip came after the job was given up on
}
INITIAL_STATE = S.QUEUED


class IllegalMove(ValueError):
    """Code asked for a move the state machine does not have: a bug, never a user's error."""


def transition(
    job: GenerationJob,
    *,
    to: str,
    party: Party,
    allowed_from: Iterable[str] | None = None,
    reason: str = "",
    **fields: Any,
) -> bool:
    """Move `job` to `to` from whatever state it is in, if `MOVES` lets `party` make that move
    (and the state is one of `allowed_from`, when the caller narrows it). True if moved.

    The UPDATE names the exact state it read, so of two racing callers only one wins; the
    loser re-reads and tries again only if the new state is still one it may leave. Raises
    IllegalMove when `allowed_from` names a move the table does not give `party`.
    """
    possible = {
        source for (source, target), parties in MOVES.items() if target == to and party in parties
    }
    if allowed_from is not None:
        wanted = set(allowed_from)
        if not wanted <= possible:
            moves = ", ".join(f"{source} -> {to}" for source in sorted(wanted - possible))
            raise IllegalMove(f"{party.value} may not move a job {moves}")
        possible = wanted
    # The caller's copy of the state is tried first: usually right, it saves a read.
    current: str | None = job.state if job.state in possible else None
    for _ in range(4):
        if current is None:
            current = (
                GenerationJob.objects.filter(pk=job.pk).values_list("state", flat=True).first()
            )
            if current not in possible:
                return False
        now = timezone.now()
        with transaction.atomic():
            moved = GenerationJob.objects.filter(pk=job.pk, state=current).update(
                state=to, state_reason=reason, updated=now, **fields
            )
            if moved:
                JobEvent.objects.create(
                    job_id=job.pk, from_state=current, to_state=to, reason=reason
                )
                # Webhooks for the move are saved with it: never sent for a rolled-back move.
                job_moved(job_id=job.pk, project_id=job.project_id, batch_id=job.batch_id, to=to)
        if moved:
            _moved(job, to=to, reason=reason, updated=now, fields=fields)
            return True
        current = None
    return False


def _moved(
    job: GenerationJob, *, to: str, reason: str, updated: Any, fields: dict[str, Any]
) -> None:
    """Bring the caller's copy up to date with what the UPDATE wrote (reading back only the
    fields it computed in the database)."""
    job.state, job.state_reason, job.updated = to, reason, updated
    computed = [name for name, value in fields.items() if hasattr(value, "resolve_expression")]
    for name, value in fields.items():
        if name not in computed:
            setattr(job, name, value)
    if computed:
        job.refresh_from_db(fields=computed)


def note(job: GenerationJob, reason: str) -> None:
    """Say why a job is waiting, without changing its state."""
    GenerationJob.objects.filter(pk=job.pk).update(state_reason=reason, updated=timezone.now())
    job.state_reason = reason


def mermaid() -> str:
    """The state machine as a Mermaid state diagram, each arrow labelled with who moves it."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATE.value}"]
    for (source, target), parties in MOVES.items():
        who = ", ".join(party.value for party in Party if party in parties)
        lines.append(f"    {S(source).value} --> {S(target).value}: {who}")
    for final in (S.SUCCEEDED, S.FAILED, S.CANCELED):
        lines.append(f"    {final.value} --> [*]")
    return "\n".join(lines)
