"""The benchmark's non-private baseline computes the same figures, for the same cells, as a release.

``benchmarks/_baseline_sql.py`` is the denominator of the release benchmark's speed ratio ("the
plain, non-private DuckDB SQL that computes them") and the truth of the accuracy benchmark: this
test holds it to that claim. At a budget so large that OpenDP's noise is zero, every published
figure of a release equals the exact value the plain SQL gives for the same (dimension, group).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest
from privacy_synth import make_tiny

from privacy.budget import Rho
from privacy.policy import DEFAULT_POLICY, ReleasePolicy, apply_policy_updates
from privacy.release import draw_release

PERIODS = ("2025-03", "2025-Q1")
METRICS = (
    "engaged_employees",
    "contacts",
    "uptake_rate",
    "who5_mean",
    "wellbeing_low_share",
    "wellbeing_improved_share",
    "satisfaction_mean",
)


class _Noiseless(ReleasePolicy):
    """A policy whose cap is so large that the discrete Gaussian draws 0: outputs are the true aggregates."""

    @property
    def cap(self) -> Rho:
        return Rho(1e12)


def _baseline():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_baseline_sql.py"
    spec = importlib.util.spec_from_file_location("_baseline_sql", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("period", PERIODS)
def test_exact_baseline_equals_a_noiseless_release_cell_for_cell(period):
    con = make_tiny()
    # every breakdown measured and every figure shown: the tiny organisation is small
    updates = {
        "assumptions.monthly_uptake": 0.9,
        "assumptions.quarterly_uptake": 0.9,
        "k": 2,
        "k_scores": 2,
        **{
            f"max_interval_width.{m}": w
            for m, w in (
                ("who5_mean", 100),
                ("satisfaction_mean", 4),
                ("wellbeing_low_share", 1),
                ("wellbeing_improved_share", 1),
            )
        },
    }
    policy = _Noiseless(**apply_policy_updates(DEFAULT_POLICY, updates).model_dump())
    drawn = draw_release(con, "tiny", period, policy)
    assert drawn.cost.rho > 1e10
    cells = drawn.cells.filter(pl.col("status") == "published")
    exact = _baseline().exact_cells(con, "tiny", period, policy)
    keys = ["dimension", "group_value"]
    both = cells.join(
        exact.unpivot(index=keys, on=list(METRICS), variable_name="metric", value_name="exact"),
        on=[*keys, "metric"],
        how="left",
    )
    assert both.height >= 10 and both.filter(pl.col("dimension") == "department").height >= 2
    for row in both.iter_rows(named=True):
        assert row["value"] == pytest.approx(row["exact"], rel=1e-9, abs=1e-9), (row["metric"], row["group_value"])
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    shown = set(cells.select(keys).unique().rows())
    assert shown <= set(exact.select(keys).rows())  # no cell the exact SQL does not know
