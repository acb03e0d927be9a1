"""Which app may import which: billing owns money, and videos reaches it only through billing's
services and selectors. Read from the source (`ast`), so an import inside a function or under
`TYPE_CHECKING` counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from billing.models import ClipDuration
from billing.selectors import QUEUED
from videos.models import Duration, JobState

ROOT = Path(__file__).resolve().parent.parent
BILLING_CORE = ["billing/models.py", "billing/services.py", "billing/selectors.py"]
# Modules that still read billing's tables, and what replaces the read. Each entry must go as
# soon as its module changes (the last test fails while an entry is no longer needed).
BILLING_MODELS_ALLOWED: dict[str, str] = {}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports; `from a import b` counts as both `a` and `a.b`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def videos_modules() -> list[Path]:
    return sorted(
        path
        for path in (ROOT / "videos").rglob("*.py")
        if "migrations" not in path.relative_to(ROOT).parts
    )


def test_the_import_reader_sees_every_form_of_import(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import videos.models\n"
        "from billing import models\n"
        "if TYPE_CHECKING:\n"
        "    from videos.models import Project\n"
        "def later():\n"
        "    from billing.models import Price\n"
    )
    imported = imported_modules(source)
    assert {"videos.models", "billing.models", "billing.models.Price"} <= imported
    assert is_within("videos.models", "videos") and not is_within("videos_extra", "videos")


@pytest.mark.parametrize("module", BILLING_CORE)
def test_billings_core_imports_nothing_of_videos(module):
    imported = imported_modules(ROOT / module)
    assert not {name for name in imported if is_within(name, "videos")}, (
        f'{module} imports videos: name the model by string ("videos.Project") or reach it '
        "through billing's own foreign keys (billing.selectors.job_model)."
    )


def test_nothing_in_videos_reads_billings_tables_but_through_its_functions():
    offenders = {
        str(path.relative_to(ROOT))
        for path in videos_modules()
        if any(is_within(name, "billing.models") for name in imported_modules(path))
    }
    assert offenders <= set(BILLING_MODELS_ALLOWED), (
        f"{sorted(offenders - set(BILLING_MODELS_ALLOWED))} import billing.models: call a "
        "function of billing.services or billing.selectors instead."
    )


def test_every_allowed_exception_is_still_needed():
    for module in BILLING_MODELS_ALLOWED:
        path = ROOT / module
        assert path.exists() and any(
            is_within(name, "billing.models") for name in imported_modules(path)
        ), f"{module} no longer imports billing.models: remove it from BILLING_MODELS_ALLOWED."


def test_billings_copies_of_videos_names_agree():
    # Billing cannot import them, so it keeps its own; they must not drift apart.
    assert ClipDuration.choices == Duration.choices
    assert QUEUED == JobState.QUEUED
