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


@pytest.fixture(autouse=True)
def _structure(request: pytest.FixtureRequest) -> None:
    """Tests that use ``settings`` start with the default rows' customer structure in the store.

    Events are checked against the customer's headcount (data minimisation); tests about that
    rule, or about a store that does not exist yet, mark themselves ``no_seed``.
    """
    if "settings" in request.fixturenames and request.node.get_closest_marker("no_seed") is None:
        from ingest_helpers import seed_headcount

        seed_headcount(request.getfixturevalue("settings"))
