"""End to end through the real commands: generate → ingest → release --all-due → budget → export."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from release_helpers import published, run_cli

from pipeline.settings import Settings

pytestmark = pytest.mark.slow  # four CLI processes over a generated export (the fast tier covers each step)


def test_generate_ingest_release_all_due_publish_export(wb_home: Path, tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    run_cli("generate", "--out", str(gen), "--customers", "2", "--employees", "2000", "--months", "3",
            "--start", "2025-01", check_rc=0)
    files = sorted(str(p) for p in gen.iterdir())
    run_cli("ingest", *files, check_rc=0)
    out = run_cli("release", "--all-due", "--requested-by", "e2e", check_rc=0).stdout
    assert "6 released, 0 refused" in out
    settings = Settings.from_env()
    assert published(settings, "SELECT count(*), count(DISTINCT customer_id) FROM releases") == [(6, 2)]
    visible = published(settings, "SELECT count(*) FROM release_cells WHERE NOT suppressed AND metric = 'engaged_employees' AND dimension = 'total'")
    assert visible[0][0] == 6  # the organisation total is visible every month at this size
    # nothing is due any more; a second --all-due releases nothing and spends nothing
    assert "0 released, 0 refused" in run_cli("release", "--all-due", check_rc=0).stdout
    assert published(settings, "SELECT count(*) FROM budget_ledger") == [(6,)]
    budget = run_cli("budget", check_rc=0).stdout
    assert budget.count("0.75") >= 2  # 3 monthly releases of rho 0.25 per customer
    customer = published(settings, "SELECT min(customer_id) FROM releases")[0][0]
    target = tmp_path / "cells.parquet"
    run_cli("export", "--customer", customer, "--format", "parquet", "--out", str(target), check_rc=0)
    cells = pl.read_parquet(target)
    assert set(cells["period"]) == {"2025-01", "2025-02", "2025-03"}
    assert cells.filter(pl.col("suppressed"))["value"].null_count() == cells.filter(pl.col("suppressed")).height
