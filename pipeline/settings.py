"""Where the pipeline keeps its files, resolved from the environment at call time (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

LandingPolicy = Literal["archive", "delete", "keep"]


@dataclass(frozen=True)
class Settings:
    """Paths and operational options of one installation.

    ``home`` holds everything: the encrypted raw store, the published store, the
    control store, the key files and the landing folder.
    """

    home: Path
    # Ingested exports still hold client_ref in clear: delete them unless told to archive.
    landing_after_ingest: LandingPolicy = "delete"
    retention_months: int = 24

    @property
    def raw_path(self) -> Path:
        return self.home / "raw.duckdb"

    @property
    def published_path(self) -> Path:
        return self.home / "published.duckdb"

    @property
    def control_path(self) -> Path:
        return self.home / "control.duckdb"

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

    def ensure_dirs(self) -> None:
        """Create the home folders (keys folder private to the owner)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.keys_dir.mkdir(mode=0o700, exist_ok=True)
        self.landing_dir.mkdir(exist_ok=True)
        self.archive_dir.mkdir(exist_ok=True)

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> "Settings":
        """Read ``WELLBEING_HOME`` (default ``.wellbeing`` in the working directory) and options."""
        root = Path(home or os.environ.get("WELLBEING_HOME") or ".wellbeing").expanduser().resolve()
        landing = os.environ.get("WELLBEING_LANDING_AFTER_INGEST", "delete")
        if landing not in ("archive", "delete", "keep"):
            raise ValueError(
                f"WELLBEING_LANDING_AFTER_INGEST={landing!r}: use one of archive, delete, keep"
            )
        retention = int(os.environ.get("WELLBEING_RETENTION_MONTHS", "24"))
        if retention < 1:
            raise ValueError(f"WELLBEING_RETENTION_MONTHS={retention}: must be at least 1 month")
        return cls(home=root, landing_after_ingest=landing, retention_months=retention)  # type: ignore[arg-type]
