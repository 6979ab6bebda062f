"""End to end through the real commands: generate → ingest → release --all-due → budget → export."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from release_helpers import published, run_cli

from pipeline.settings import Settings
from privacy.policy import DEFAULT_POLICY

pytestmark = pytest.mark.slow  # four CLI processes over a generated export (the fast tier covers each step)


def test_generate_ingest_release_all_due_publish_export(wb_home: Path, tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    run_cli(
        "generate",
        "--out",
        str(gen),
        "--customers",
        "2",
        "--employees",
        "2000",
        "--months",
        "3",
        "--start",
        "2025-01",
        check_rc=0,
    )
    files = sorted(str(p) for p in gen.iterdir())
    run_cli("ingest", *files, check_rc=0)
    out = run_cli("release", "--all-due", "--requested-by", "e2e", check_rc=0).stdout
    assert "8 released, 0 refused" in out  # 3 months and one quarter (wellbeing, services, topics) per customer
    settings = Settings.from_env()
    assert published(settings, "SELECT count(*), count(DISTINCT customer_id) FROM releases") == [(8, 2)]
    visible = published(
        settings,
        "SELECT count(*) FROM release_cells WHERE NOT suppressed AND metric = 'engaged_employees' AND dimension = 'total'",
    )
    assert visible[0][0] == 6  # the organisation total is visible every month at this size
    # nothing is due any more; a second --all-due releases nothing and spends nothing
    assert "0 released, 0 refused" in run_cli("release", "--all-due", check_rc=0).stdout
    assert published(settings, "SELECT count(*) FROM budget_ledger") == [(8,)]
    budget = run_cli("budget", check_rc=0).stdout
    cap = DEFAULT_POLICY.cap.value  # 3 monthly releases (cap × 0.5 / 12 each) and one quarter (cap × 0.5 / 5)
    assert budget.count(f"{cap * (3 * 0.5 / 12 + 0.5 / 5):.4g}") == 2
    customer = published(settings, "SELECT min(customer_id) FROM releases")[0][0]
    target = tmp_path / "cells.parquet"
    run_cli("export", "--customer", customer, "--format", "parquet", "--out", str(target), check_rc=0)
    cells = pl.read_parquet(target)
    assert set(cells["period"]) == {"2025-01", "2025-02", "2025-03", "2025-Q1"}
    assert cells.filter(pl.col("suppressed"))["value"].null_count() == cells.filter(pl.col("suppressed")).height
