"""Fixtures for the parser tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def corpus() -> Path:
    """``../shared/corpus`` next to the repository; tests that need it skip without it."""
    path = REPO.parent / "shared" / "corpus"
    if not path.is_dir():
        pytest.skip(f"the shared corpus is not at {path} (clone it next to the repository)")
    return path
