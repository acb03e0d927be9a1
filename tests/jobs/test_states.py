"""The job state machine is a table: `transition()` makes only the moves it lists, for the
parties it names, and nothing else in the code writes a job's state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fixtures.data import make_job
from videos.jobs.states import MOVES, IllegalMove, Party, mermaid, transition
from videos.models import JobState

S = JobState
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_a_move_outside_the_table_is_refused_and_changes_nothing(project):
    job = make_job(project, state=S.SUCCEEDED)
    assert (S.SUCCEEDED, S.QUEUED) not in MOVES
    assert transition(job, to=S.QUEUED, party=Party.WORKER, reason="again") is False
    job.refresh_from_db()
    assert job.state == S.SUCCEEDED
    assert not job.events.exists()


def test_a_party_may_make_only_its_own_moves(project):
    job = make_job(project, state=S.QUEUED)
    # Only a worker claims a submission slot; a person cannot push a job to the provider.
    assert transition(job, to=S.SUBMITTING, party=Party.PERSON) is False
    assert transition(job, to=S.SUBMITTING, party=Party.WORKER) is True
    job.refresh_from_db()
    assert job.state == S.SUBMITTING
    assert list(job.events.values_list("from_state", "to_state")) == [(S.QUEUED, S.SUBMITTING)]


def test_naming_a_move_the_table_lacks_is_a_bug_not_a_no_op(project):
    job = make_job(project, state=S.SUCCEEDED)
    with pytest.raises(IllegalMove, match="succeeded -> queued"):
        transition(job, to=S.QUEUED, party=Party.WORKER, allowed_from=[S.SUCCEEDED])


def test_every_state_is_reachable_and_every_terminal_state_has_a_way_in():
    targets = {target for _, target in MOVES}
    assert set(S.values) - {S.QUEUED} <= targets
    assert all(parties for parties in MOVES.values())


WRITERS = {"update", "create", "get_or_create", "update_or_create", "bulk_create", "bulk_update"}


def _state_writes(path: Path) -> list[str]:
    """Places in `path` that write a job's `state` field: `x.state = ...`, or `state=` passed to
    a model write (`update`, `create`, ...) or to `GenerationJob(...)`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "state" for t in targets):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        elif isinstance(node, ast.Call) and any(k.arg == "state" for k in node.keywords):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in WRITERS or name == "GenerationJob":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_nothing_but_the_state_module_writes_a_jobs_state():
    sources = [
        path
        for folder in ("videos", "billing", "config")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts
    ]
    writes = [
        place
        for path in sources
        if path != ROOT / "videos" / "jobs" / "states.py"
        for place in _state_writes(path)
    ]
    assert writes == []
    # The check itself finds what it looks for.
    assert _state_writes(ROOT / "videos" / "jobs" / "states.py")


def test_the_readme_draws_the_state_machine_as_it_is():
    assert mermaid() in (ROOT / "README.md").read_text()
