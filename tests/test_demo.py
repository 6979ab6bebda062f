"""The README's main command, end to end: synthetic export → Dagster ingest → Dagster releases → published store."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

pytestmark = pytest.mark.slow

DEMO = [sys.executable, "-m", "pipeline.cli", "demo", "--no-serve", "--employees", "400", "--months", "2"]


def _run_demo(home: Path) -> str:
    done = subprocess.run(DEMO, capture_output=True, text=True, timeout=600, env=_env(home))
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _env(home: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WELLBEING_", "DAGSTER_"))}
    env["WELLBEING_HOME"] = str(home)
    return env


def _published(home: Path) -> tuple[list[tuple], list[tuple]]:
    con = duckdb.connect(str(home / "published.duckdb"), read_only=True)
    try:
        cells = con.execute(
            "SELECT customer_id, period, dimension, group_value, metric, value FROM release_cells ORDER BY ALL"
        ).fetchall()
        ledger = con.execute("SELECT customer_id, period, rho, kind FROM budget_ledger ORDER BY ALL").fetchall()
    finally:
        con.close()
    return cells, ledger


def test_demo_publishes_through_dagster_and_a_rerun_spends_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _run_demo(home)
    assert "6 new release(s)" in first  # 3 customers x 2 months
    cells, ledger = _published(home)
    assert len(ledger) == 6 and all(kind == "release" for *_, kind in ledger)
    assert cells, "nothing was published"

    # The runs and the customer partitions are in the persistent Dagster instance the UI reads.
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        assert len(instance.get_dynamic_partitions("customers")) == 3
        jobs = {run.job_name for run in instance.get_runs()}
        assert {"ingest_job", "release_request_job"} <= jobs
    finally:
        instance.dispose()

    second = _run_demo(home)
    assert "nothing due" in second
    assert _published(home) == (cells, ledger), "a re-run must serve the stored release, never re-noise it"

    # No individual identifier reaches the console: no client_ref, no pseudonym, no event id.
    for output in (first, second):
        assert not re.search(r"\b[0-9a-f]{64}\b", output)
        assert not re.search(r"\bC-\d{5,}\b", output)
        assert not re.search(r"\bEV-\d{5,}\b", output)
