"""The Dagster code location: ingest and release definitions merged, executor set once.

Loaded by ``dagster dev -w workspace.yaml`` and ``dg``. Nothing here reads the
environment at import: resources resolve ``$WELLBEING_HOME`` and keys at run time.
"""

import dagster as dg

from pipeline import defs_ingest, defs_releases

defs = dg.Definitions.merge(
    defs_ingest.defs,
    defs_releases.defs,
    # One step at a time: DuckDB allows one writing process per file (see also the
    # duckdb_writer pool in $DAGSTER_HOME/dagster.yaml written by pipeline.instance).
    dg.Definitions(executor=dg.in_process_executor),
)
