"""Paths the dashboards may use, from ``WELLBEING_HOME``: the published store, the control store
and the credentials file. Privacy reason: the raw store and its keys are deliberately absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DashboardPaths:
    """The three files the dashboard process may open (published read-only)."""

    home: Path
    retention_months: int = 24

    @property
    def published(self) -> Path:
        return self.home / "published.duckdb"

    @property
    def control(self) -> Path:
        return self.home / "control.duckdb"

    @property
    def auth_file(self) -> Path:
        return self.home / "auth.yaml"


def dashboard_paths() -> DashboardPaths:
    """Resolve ``WELLBEING_HOME`` (default ``.wellbeing``) and ``WELLBEING_RETENTION_MONTHS`` (default 24)."""
    home = Path(os.environ.get("WELLBEING_HOME") or ".wellbeing").expanduser().resolve()
    try:
        retention = int(os.environ.get("WELLBEING_RETENTION_MONTHS", "24"))
    except ValueError:
        retention = 24
    return DashboardPaths(home=home, retention_months=max(retention, 1))
