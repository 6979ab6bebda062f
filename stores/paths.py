"""The files under ``$WELLBEING_HOME`` that the dashboards may know.

Privacy reason: the dashboards process resolves its files from this module only, and this
module does not name the raw store, its keys or their folder: they are in
``pipeline/settings.py`` (pipeline only). ``tests/test_architecture.py`` checks that neither
``stores/`` nor ``dashboards/`` names them. Paths are resolved when :func:`home_paths` is
called, never at import.

>>> paths = HomePaths(Path("/srv/wb"))
>>> paths.published.name, paths.control.name, paths.auth_file.name, paths.audit.name
('published.duckdb', 'control.duckdb', 'auth.yaml', 'audit.duckdb')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HOME_ENV = "WELLBEING_HOME"
RETENTION_ENV = "WELLBEING_RETENTION_MONTHS"
DEFAULT_HOME = ".wellbeing"
DEFAULT_RETENTION_MONTHS = 24

PUBLISHED_FILE = "published.duckdb"
CONTROL_FILE = "control.duckdb"
AUTH_FILE = "auth.yaml"
AUDIT_FILE = "audit.duckdb"
NOTICE_FILE = "notice.toml"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """``home``, else ``$WELLBEING_HOME``, else ``./.wellbeing``; absolute."""
    return _resolved(os.fspath(home or os.environ.get(HOME_ENV) or DEFAULT_HOME), os.getcwd())


@lru_cache(maxsize=64)
def _resolved(raw: str, cwd: str) -> Path:
    """The absolute path of ``raw`` seen from ``cwd`` (memoised: the dashboards resolve it on every read)."""
    return (Path(cwd) / Path(raw).expanduser()).resolve()


@dataclass(frozen=True)
class HomePaths:
    """The shared files of one installation (the published store is opened read-only by readers)."""

    home: Path
    retention_months: int = DEFAULT_RETENTION_MONTHS

    @property
    def published(self) -> Path:
        """Aggregates only: releases, cells, ledger copy, policy history, public headcount."""
        return self.home / PUBLISHED_FILE

    @property
    def control(self) -> Path:
        """Policy values and history, release requests; no personal data."""
        return self.home / CONTROL_FILE

    @property
    def auth_file(self) -> Path:
        """Dashboard accounts (bcrypt hashes), role and customer binding."""
        return self.home / AUTH_FILE

    @property
    def audit(self) -> Path:
        """The dashboards' access-audit log (who looked at which customer's numbers, when)."""
        return self.home / AUDIT_FILE

    @property
    def notice_file(self) -> Path:
        """The privacy notice's controller details per customer (GDPR Art. 13), filled in by the customer."""
        return self.home / NOTICE_FILE


def home_paths(home: str | os.PathLike[str] | None = None) -> HomePaths:
    """Resolve ``WELLBEING_HOME`` (default ``.wellbeing``) and ``WELLBEING_RETENTION_MONTHS`` (default 24)."""
    try:
        retention = int(os.environ.get(RETENTION_ENV, str(DEFAULT_RETENTION_MONTHS)))
    except ValueError:
        retention = DEFAULT_RETENTION_MONTHS
    return HomePaths(home=resolve_home(home), retention_months=max(retention, 1))
