"""Dagster resources: the encrypted raw store and the landing folder.

Paths and keys are resolved when a resource is used (run time), never at import: the
:func:`resources` definitions carry default-constructed resources that read ``$WELLBEING_HOME``
when a run or sensor uses them.
"""

from pathlib import Path

import dagster as dg
import duckdb

from pipeline.ingest.readers import SUFFIX_FORMATS
from pipeline.raw_store import connect_raw
from pipeline.settings import Settings


class RawStoreResource(dg.ConfigurableResource):
    """The encrypted raw store under ``home`` (empty: ``$WELLBEING_HOME`` or ``./.wellbeing``).

    Keys come from the environment or the key files of that home (see pipeline.keys).
    """

    home: str = ""

    def settings(self) -> Settings:
        return Settings.from_env(self.home or None)

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """A new connection to the raw store (``USE raw``); the caller closes it."""
        return connect_raw(self.settings(), read_only=read_only)


class LandingZone(dg.ConfigurableResource):
    """The provider drop folder (empty ``path``: ``$WELLBEING_HOME/landing``)."""

    path: str = ""
    settle_seconds: float = 5.0  # a file younger than this may still be being copied

    def directory(self) -> Path:
        return Path(self.path) if self.path else Settings.from_env().landing_dir

    def files(self) -> list[Path]:
        """Deliverable files in the folder (supported suffixes, no hidden or partial files), by name."""
        folder = self.directory()
        if not folder.is_dir():
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIX_FORMATS
        )


@dg.definitions
def resources() -> dg.Definitions:
    """The code location's resources (one of each; every asset, sensor and job shares them)."""
    return dg.Definitions(resources={"raw_store": RawStoreResource(), "landing": LandingZone()})
