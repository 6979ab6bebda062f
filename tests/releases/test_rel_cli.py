"""The release, budget, policy and export verbs, run as real processes (a restart between each)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import duckdb
import polars as pl
from release_helpers import CUSTOMERS, published, raw_ledger, run_cli

from pipeline.settings import Settings
from privacy.budget import implied_epsilon, release_cost
from privacy.policy import DEFAULT_POLICY

C = CUSTOMERS[0]


def test_release_budget_and_ledger_survive_restarts(home: Path, rsettings: Settings) -> None:
    out = run_cli("release", "--customer", C, "--period", "2025-03", "--requested-by", "alice", check_rc=0)
    assert "published" in out.stdout
    # a new process serves the stored release and spends nothing
    out = run_cli("release", "--customer", C, "--period", "2025-03", check_rc=0)
    assert "served_stored" in out.stdout and "nothing spent" in out.stdout
    ledger = raw_ledger(rsettings)  # read back through a new connection in this process
    assert [(r[0], r[1], r[2], r[5]) for r in ledger] == [(C, "2025-03", "release", "alice")]
    budget = run_cli("budget", "--customer", C, check_rc=0).stdout
    line = next(x for x in budget.splitlines() if x.startswith(C))
    monthly, cap = release_cost(DEFAULT_POLICY, "2025-03").rho, DEFAULT_POLICY.cap.value
    assert "2024-04..2025-03" in line and f" {monthly:.4g} " in line and f" {cap:.4g} " in line
    assert f" {cap - monthly:.4g} " in line and "(8, 1e-06)" in line


def test_over_budget_cli_exits_3_with_spent_cap_needed(home: Path, rsettings: Settings) -> None:
    run_cli("release", "--customer", C, "--period", "2025-01", check_rc=0)
    spent = release_cost(DEFAULT_POLICY, "2025-01").rho
    # the officer lowers the annual ε so that the cap is what is already spent
    run_cli(
        "policy", "set", "epsilon_annual", repr(implied_epsilon(spent, 1e-6)), "--customer", C, "--by", "po", check_rc=0
    )
    cells_before = published(rsettings, "SELECT count(*) FROM release_cells")
    proc = run_cli("release", "--customer", C, "--period", "2025-02", check_rc=3)
    assert f"rho={spent:.4g} of the rolling 12-month cap rho={spent:.4g}" in proc.stderr  # spent / cap
    assert f"needs rho={spent * 0.5 / 12:.4g}" in proc.stderr  # needed: a monthly release at the lowered dial
    assert "Nothing was drawn, published or spent" in proc.stderr
    assert published(rsettings, "SELECT count(*) FROM release_cells") == cells_before
    assert published(rsettings, "SELECT count(*) FROM releases WHERE period = '2025-02'")[0][0] == 0
    assert len(raw_ledger(rsettings)) == 1


def test_policy_set_validates_and_records_history(home: Path, rsettings: Settings) -> None:
    from pipeline.cli import main

    cases = [
        (["k", "1"], "k must be between 2 and 1000"),
        (["epsilon_annual", "-0.1"], "epsilon_annual must be above 0 and at most 20"),
        (["epsilon_annual", "1e9"], "epsilon_annual must be above 0 and at most 20"),
        (["z", "abc"], "expected a number"),
        (["colour", "blue"], "unknown policy key 'colour'"),
        (["rho_cap_12m", "0.1", "--customer", C], "the budget is now set as epsilon_annual"),
    ]
    for args, message in cases:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["policy", "set", *args, "--by", "po"]) == 2
        assert message in err.getvalue(), (args, err.getvalue())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["policy", "set", "k", "12", "--customer", C, "--by", "po"]) == 0
        assert main(["policy", "set", "z", "2.0", "--by", "lead"]) == 0
        assert main(["policy", "show", "--customer", C]) == 0
    text = out.getvalue()
    assert f"{C}: k 10 -> 12 (policy version 1, by po)" in text
    assert "default: z 1.645 -> 2.0 (policy version 2, by lead)" in text
    assert "policy for acme-moderation (version 2)" in text
    con = duckdb.connect(str(rsettings.control_path), read_only=True)
    try:
        history = con.execute(
            "SELECT changed_by, scope, key, old_value, new_value, policy_version FROM policy_history ORDER BY 6"
        ).fetchall()
    finally:
        con.close()
    assert history == [("po", C, "k", "10", "12", 1), ("lead", "*", "z", "1.645", "2.0", 2)]
    # a risky value is accepted with a loud warning, recorded with the change
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["policy", "set", "k", "4", "--customer", CUSTOMERS[1], "--by", "po"]) == 0
    assert "WARNING (recorded with the change): k = 4" in err.getvalue()
    con = duckdb.connect(str(rsettings.control_path), read_only=True)
    try:
        warning = con.execute("SELECT warning FROM policy_history WHERE policy_version = 3").fetchone()[0]
    finally:
        con.close()
    assert warning.startswith("k = 4: figures about groups of fewer than 5 people")
    # the change applies to the next release, which records the policy version it was drawn under
    from pipeline.releases.lifecycle import run_release

    run_release(rsettings, C, "2025-01", requested_by="t")
    assert published(rsettings, "SELECT k, z, policy_version FROM releases") == [(12, 2.0, 2)]
    assert published(rsettings, "SELECT count(*) FROM policy_history")[0][0] == 3


def test_export_holds_published_cells_only(home: Path, rsettings: Settings, tmp_path: Path) -> None:
    from pipeline.cli import main
    from pipeline.releases.lifecycle import run_release

    assert main(["export", "--customer", C, "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 2
    run_release(rsettings, C, "2025-Q1", requested_by="t")  # services and topics: some hidden cells
    run_release(rsettings, CUSTOMERS[1], "2025-Q1", requested_by="t")
    expected = pl.DataFrame(
        published(
            rsettings,
            "SELECT dimension, group_value, metric, value, suppressed FROM release_cells "
            f"WHERE customer_id = '{C}' ORDER BY 1, 2, 3",
        ),
        schema=["dimension", "group_value", "metric", "value", "suppressed"],
        orient="row",
    )
    frames = {}
    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"cells.{fmt}"
        assert main(["export", "--customer", C, "--period", "2025-Q1", "--format", fmt, "--out", str(out)]) == 0
        frames[fmt] = {"csv": pl.read_csv, "json": pl.read_json, "parquet": pl.read_parquet}[fmt](out)
    # CSV: the dashboards' export layout (numbers in numeric columns, a status, readable names)
    csv = frames.pop("csv")
    assert set(csv["Organisation"]) == {C} and csv.height == expected.height
    assert csv.schema["Value"] == pl.Float64 and csv.schema["95 % low"] == pl.Float64
    assert sorted(csv["Value"].drop_nulls().to_list()) == sorted(expected["value"].drop_nulls().to_list())
    not_shown = csv.filter(pl.col("Status") != "published")
    assert not_shown.height == int(expected["suppressed"].sum()) > 0
    assert not_shown["Value"].null_count() == not_shown.height
    for fmt, frame in frames.items():
        assert set(frame["customer_id"]) == {C}, fmt  # never another customer's cells
        got = frame.sort("dimension", "group_value", "metric").select(expected.columns)
        assert got["value"].cast(pl.Float64).to_list() == expected["value"].to_list(), fmt
        hidden = frame.filter(pl.col("suppressed"))
        assert hidden.height > 0 and hidden["value"].null_count() == hidden.height, fmt
        assert hidden["ci_low"].null_count() == hidden.height and hidden["ci_high"].null_count() == hidden.height
    assert main(["export", "--customer", C, "--format", "parquet"]) == 2
    assert main(["export", "--customer", C, "--period", "2025-13", "--format", "csv"]) == 2
    records = json.loads((tmp_path / "cells.json").read_text())
    assert all(set(r) >= {"value", "ci_low", "ci_high", "reason"} for r in records)
