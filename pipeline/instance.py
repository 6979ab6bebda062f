"""A persistent Dagster instance under ``$WELLBEING_HOME/dagster``.

Dynamic partitions (one per customer) live in the instance, so the demo and
``dagster dev`` must share a persistent ``DAGSTER_HOME``. DuckDB allows one writing
process per file, so every asset that writes a store runs in the ``duckdb_writer``
pool, limited to one step at a time.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.settings import Settings

DAGSTER_YAML = """\
# Written by the wellbeing pipeline. DuckDB allows one writer per file: one step at a time in the pool.
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 2
telemetry:
  enabled: false
"""


def ensure_dagster_home(settings: Settings) -> Path:
    """Create ``$WELLBEING_HOME/dagster`` with its ``dagster.yaml`` and point ``DAGSTER_HOME`` at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
