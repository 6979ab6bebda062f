"""Shared fixtures: every test gets its own WELLBEING_HOME and no key from the caller's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.keys import KEY_ENV_VARS
from pipeline.settings import Settings


@pytest.fixture
def wb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty WELLBEING_HOME for one test; keys come from files created on first use."""
    home = tmp_path / "home"
    monkeypatch.setenv("WELLBEING_HOME", str(home))
    for var in KEY_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def settings(wb_home: Path) -> Settings:
    return Settings.from_env()
