"""Where the pipeline keeps its files, resolved from the environment at call time (never at import).

The files the dashboards may know (published store, control store, accounts) are named in
:mod:`stores.paths`; this module adds the pipeline's own: the encrypted raw store, its key
files, the landing and archive folders and the Dagster home. Only the pipeline imports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stores.paths import DEFAULT_RETENTION_MONTHS, RETENTION_ENV, HomePaths, resolve_home

LandingPolicy = Literal["archive", "delete", "keep"]
LANDING_POLICIES: tuple[LandingPolicy, ...] = ("archive", "delete", "keep")


@dataclass(frozen=True)
class Settings(HomePaths):
    """Paths and operational options of one installation.

    ``home`` holds everything: the encrypted raw store, the published store, the
    control store, the key files and the landing folder.
    """

    # Ingested exports still hold client_ref in clear: delete them unless told to archive.
    landing_after_ingest: LandingPolicy = "delete"

    @property
    def raw_path(self) -> Path:
        return self.home / "raw.duckdb"

    @property
    def published_path(self) -> Path:
        return self.published

    @property
    def control_path(self) -> Path:
        return self.control

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def raw_key_file(self) -> Path:
        return self.keys_dir / "raw.key"

    @property
    def pseudonym_key_file(self) -> Path:
        return self.keys_dir / "pseudonym.key"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def tmp_dir(self) -> Path:
        """Where DuckDB spills while working on individual records (encrypted, inside the home)."""
        return self.home / "tmp"

    @property
    def demo_export_dir(self) -> Path:
        """Where ``wellbeing demo`` stages its synthetic export before moving it to the landing folder."""
        return self.home / "demo-export"

    def ensure_dirs(self) -> None:
        """Create the home folders (keys folder private to the owner)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.keys_dir.mkdir(mode=0o700, exist_ok=True)
        self.landing_dir.mkdir(exist_ok=True)
        self.archive_dir.mkdir(exist_ok=True)

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Read ``WELLBEING_HOME`` (default ``.wellbeing`` in the working directory) and options."""
        landing = os.environ.get("WELLBEING_LANDING_AFTER_INGEST", "delete")
        if landing not in LANDING_POLICIES:
            raise ValueError(f"WELLBEING_LANDING_AFTER_INGEST={landing!r}: use one of archive, delete, keep")
        retention = int(os.environ.get(RETENTION_ENV, str(DEFAULT_RETENTION_MONTHS)))
        if retention < 1:
            raise ValueError(f"WELLBEING_RETENTION_MONTHS={retention}: must be at least 1 month")
        return cls(
            home=resolve_home(home), landing_after_ingest=landing, retention_months=retention
        )
