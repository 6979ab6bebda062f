"""Release fixtures: one generated + ingested raw store per session, copied into each test's home.

The copy includes the home's key files, so each test works on its own encrypted store with
its own keys and never touches another test's files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from release_helpers import CUSTOMERS

from pipeline.keys import KEY_ENV_VARS
from pipeline.settings import Settings


@pytest.fixture(scope="session")
def ingested_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with 2 customers × 6 months (2025-01..06) ingested through the real ingest code."""
    from pipeline.ingest import ingest_files
    from pipeline.synthetic import generate

    base = tmp_path_factory.mktemp("release-template")
    saved = {v: os.environ.pop(v) for v in KEY_ENV_VARS if v in os.environ}
    try:
        files = generate(base / "gen", customers=2, employees=2500, months=6, seed=11, start="2025-01")
        assert tuple(files.customers) == CUSTOMERS
        home = base / "home"
        reports, refused = ingest_files(Settings.from_env(home), [*files.events, *files.headcounts])
        assert not refused and reports
    finally:
        os.environ.update(saved)
    return home


@pytest.fixture
def home(ingested_template: Path, wb_home: Path) -> Path:
    shutil.copytree(ingested_template, wb_home)
    return wb_home


@pytest.fixture
def rsettings(home: Path) -> Settings:
    return Settings.from_env()
