"""The Dagster code location: every definition under ``pipeline/defs/``, executor set once.

Loaded by ``dg dev`` / ``dg check defs`` (``[tool.dg]`` in ``pyproject.toml``) and by
``dagster dev -w workspace.yaml``. :func:`dagster.load_from_defs_folder` imports the modules
of ``pipeline/defs`` (one definition kind per module) and merges what they define. Nothing
here reads the environment: resources resolve ``$WELLBEING_HOME`` and keys at run time.
"""

from pathlib import Path

import dagster as dg

# In-process within a run: a run holds one customer-month and its two steps (release, then the
# published store) depend on each other. Parallelism is across runs: one process per run, one
# in-progress run per customer (run tag limit in dagster.yaml, see pipeline.instance).
EXECUTOR = dg.in_process_executor


def build_defs(resources: dict[str, object] | None = None) -> dg.Definitions:
    """The code location's definitions; ``resources`` replaces the defaults (tests: another home)."""
    folder = dg.load_from_defs_folder(path_within_project=Path(__file__).resolve().parent)
    return dg.Definitions(
        assets=folder.assets,
        asset_checks=folder.asset_checks,
        jobs=folder.jobs,
        schedules=folder.schedules,
        sensors=folder.sensors,
        resources={**(folder.resources or {}), **(resources or {})},
        executor=EXECUTOR,
    )


defs = build_defs()
