"""Data-free previews (the what-if tuner): the plan's noise and public headcount only, no OpenDP import."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from privacy_synth import TINY_HEADCOUNT, make_tiny, tiny_policy

from privacy.accuracy import preview, reference_headcount
from privacy.intervals import z_value
from privacy.policy import DEFAULT_POLICY, apply_policy_updates
from privacy.release import draw_release

ROOT = Path(__file__).resolve().parents[2]


def test_signature_takes_no_events():
    assert list(inspect.signature(preview).parameters) == ["policy", "headcount"]


def test_importing_accuracy_and_policy_does_not_import_opendp():
    code = (
        "import sys, privacy, privacy.accuracy, privacy.policy, privacy.budget;"
        "from privacy.accuracy import preview, reference_headcount;"
        "from privacy.policy import DEFAULT_POLICY as p; preview(p, reference_headcount());"
        "print('opendp' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_halfwidths_follow_the_noise_scale_and_the_budget():
    base = preview(DEFAULT_POLICY, reference_headcount(10_000))

    def row(p, m, d="total"):
        return p.figures.filter((pl.col("metric") == m) & (pl.col("dimension") == d)).row(0, named=True)

    engaged = row(base, "engaged_employees")
    assert engaged["halfwidth"] == pytest.approx(z_value(0.05) * engaged["sd"], rel=1e-9)
    # four times the budget (in ρ) halves the intervals
    rho4 = 4 * DEFAULT_POLICY.cap.value
    eps4 = rho4 + 2 * math.sqrt(rho4 * math.log(1 / DEFAULT_POLICY.delta))
    four = preview(apply_policy_updates(DEFAULT_POLICY, {"epsilon_annual": eps4}), reference_headcount(10_000))
    assert row(four, "engaged_employees")["halfwidth"] == pytest.approx(engaged["halfwidth"] / 2, rel=1e-6)
    assert set(base.figures["metric"]) == {
        "engaged_employees",
        "contacts",
        "uptake_rate",
        "who5_mean",
        "wellbeing_low_share",
        "wellbeing_improved_share",
        "satisfaction_mean",
    }
    # a larger organisation has narrower means and shares (more people with a score)
    small = preview(DEFAULT_POLICY, reference_headcount(2_000))
    assert row(small, "who5_mean")["halfwidth"] > row(base, "who5_mean")["halfwidth"]


def test_preview_sd_is_the_sd_of_a_real_release():
    con = make_tiny()
    policy = tiny_policy()
    cells = draw_release(con, "tiny", "2025-03", policy).cells
    real = cells.filter((pl.col("metric") == "engaged_employees") & (pl.col("dimension") == "total"))["noise_sd"].item()
    hc = TINY_HEADCOUNT.with_columns(customer_id=pl.lit("tiny"))
    expected = (
        preview(policy, hc)
        .figures.filter(
            (pl.col("granularity") == "month")
            & (pl.col("metric") == "engaged_employees")
            & (pl.col("dimension") == "total")
        )["sd"]
        .item()
    )
    assert real == pytest.approx(expected, rel=1e-9)  # the same plan, the same consistency step


def test_shares_shown_hidden_and_the_allocation_from_public_headcount_only():
    big = TINY_HEADCOUNT.with_columns(pl.col("headcount") * 100, customer_id=pl.lit("big"))
    small = TINY_HEADCOUNT.with_columns(customer_id=pl.lit("small"))
    p = preview(DEFAULT_POLICY, pl.concat([big, small]))
    shown = p.figures.group_by("customer_id").agg((pl.col("expected_status") == "published").mean())
    s = dict(shown.iter_rows())
    assert 0 <= s["small"] < s["big"] <= 1
    alloc = p.allocations.filter(pl.col("customer_id") == "small")
    assert not alloc.filter(pl.col("dimension") == "department")["measured"].any()  # too small to be informative
    assert alloc.filter(pl.col("dimension") == "total")["measured"].all()
    for _, g in p.allocations.group_by("customer_id", "granularity"):
        assert g["share"].sum() == pytest.approx(1.0)
    assert set(p.summary.columns) >= {"metric", "dimension", "halfwidth", "shown", "hidden", "too_uncertain"}
