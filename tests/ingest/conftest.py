"""Fixtures for ingest tests (helpers live in ingest_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """A folder outside the landing zone for test deliveries."""
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder
