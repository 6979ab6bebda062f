"""The benchmark's non-private baseline computes the same aggregates, for the same cells, as a release.

``benchmarks/_baseline_sql.py`` is the denominator of issue 3's speed ratio ("the plain,
non-private DuckDB SQL that computes them"): this test holds it to that claim. At a budget so
large that OpenDP's noise is zero, every measured aggregate of a release equals the exact value
the plain SQL gives for the same (dimension, group_value).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest
from privacy_synth import make_tiny

from privacy.budget import release_cost
from privacy.measure import measure, plan_queries
from privacy.periods import parse_period
from privacy.policy import DEFAULT_POLICY
from privacy.reduce import Bounds, reduce_period
from privacy.structure import load_structure

PERIOD = "2025-03"
NOISELESS = 1e12  # ρ so large that the discrete Gaussian draws 0: the outputs are the true aggregates


def _baseline():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_baseline_sql.py"
    spec = importlib.util.spec_from_file_location("_baseline_sql", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exact_baseline_equals_a_noiseless_release_cell_for_cell():
    con = make_tiny()
    p = parse_period(PERIOD)
    s = load_structure(con, "tiny", PERIOD, DEFAULT_POLICY.k)
    bounds = Bounds.for_period(DEFAULT_POLICY, p)
    frame = reduce_period(con, "tiny", p, bounds, s.key_map)
    assert release_cost(DEFAULT_POLICY, PERIOD).rho < NOISELESS
    specs = plan_queries(DEFAULT_POLICY, DEFAULT_POLICY.tables_for(p.granularity), bounds, s.people_keys(), NOISELESS)
    wide = (
        measure(frame, specs, DEFAULT_POLICY, NOISELESS).noisy
        .pivot(on="aggregate", index=["dimension", "group_value"], values="value")
        .join(s.public_headcount.select("dimension", "group_value", "headcount"), on=["dimension", "group_value"], how="left")
        .select(
            "dimension", "group_value",
            pl.col("engaged").alias("engaged_employees"),
            pl.col("contacts").fill_null(0),
            (pl.col("engaged") / pl.col("headcount")).alias("uptake_rate"),
            (pl.col("who5_sum") / pl.col("who5_n")).alias("who5_mean"),
            (pl.col("satisfaction_sum") / 100 / pl.col("satisfaction_n")).alias("satisfaction_mean"),
        )
    )  # fmt: skip
    exact = _baseline().exact_cells(con, "tiny", PERIOD, DEFAULT_POLICY)
    keys = ["dimension", "group_value"]
    assert sorted(map(tuple, exact.select(keys).rows())) == sorted(map(tuple, wide.select(keys).rows()))  # the same cells
    both = wide.join(exact, on=keys, suffix="_exact")
    assert both.filter(pl.col("dimension") == "department").height >= 2 and both["engaged_employees"].sum() > 0
    for metric in ("engaged_employees", "contacts", "uptake_rate", "who5_mean", "satisfaction_mean"):
        got, want = both[metric].to_list(), both[f"{metric}_exact"].to_list()
        for g, w in zip(got, want):
            if w is None or (isinstance(w, float) and w != w):
                assert g is None or g != g, metric  # no value where the exact SQL has none (e.g. no scorer)
            else:
                assert g == pytest.approx(w, rel=1e-9, abs=1e-9), metric
