from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.data",
    "tests.fixtures.simulator",
    "tests.fixtures.platform",
    "tests.fixtures.worker",
    "tests.fixtures.browser",
    "tests.fixtures.receiver",
    "tests.fixtures.api",
]


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Each test writes its files under its own temporary folder, never the real media/."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root
