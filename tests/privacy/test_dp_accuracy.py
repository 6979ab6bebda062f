"""Data-free what-if functions: noise scale and public headcount only, no OpenDP import."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from privacy_synth import TINY_HEADCOUNT, insert_events, insert_headcount, raw_connection

from privacy.accuracy import expected_interval_halfwidths, expected_suppression_share
from privacy.policy import DEFAULT_POLICY, apply_policy_updates
from privacy.release import draw_release

ROOT = Path(__file__).resolve().parents[2]


def test_signatures_take_no_events():
    assert list(inspect.signature(expected_interval_halfwidths).parameters) == ["policy", "assumed_scorers"]
    assert list(inspect.signature(expected_suppression_share).parameters) == [
        "policy", "headcount", "assumed_uptake", "assumed_score_share"]


def test_importing_accuracy_and_policy_does_not_import_opendp():
    code = ("import sys, privacy, privacy.accuracy, privacy.policy, privacy.budget;"
            "from privacy.accuracy import expected_interval_halfwidths as f;"
            "from privacy.policy import DEFAULT_POLICY as p; f(p);"
            "print('opendp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_halfwidths_follow_the_noise_scale():
    hw = expected_interval_halfwidths(DEFAULT_POLICY)
    engaged = hw.filter((pl.col("metric") == "engaged_employees") & (pl.col("dimension") == "breakdowns")).row(0, named=True)
    sigma = math.sqrt(4 / (2 * 0.25 * 0.30))  # one cell in each of 4 breakdown queries, ρ/4 each
    assert engaged["sd"] == pytest.approx(sigma, rel=1e-6)
    assert engaged["halfwidth"] == pytest.approx(1.959964 * sigma, rel=1e-5)
    # four times the budget halves the interval
    hw4 = expected_interval_halfwidths(apply_policy_updates(DEFAULT_POLICY, {"rho_per_release": 1.0, "rho_cap_12m": 12}))
    e4 = hw4.filter((pl.col("metric") == "engaged_employees") & (pl.col("dimension") == "breakdowns"))["halfwidth"].item()
    assert e4 == pytest.approx(engaged["halfwidth"] / 2, rel=1e-6)
    assert set(hw["metric"]) == {"engaged_employees", "contacts", "uptake_rate", "who5_mean", "satisfaction_mean"}
    more = expected_interval_halfwidths(DEFAULT_POLICY, assumed_scorers=500)
    w = lambda f: f.filter(pl.col("metric") == "who5_mean")["halfwidth"].item()  # noqa: E731
    assert w(more) < w(hw)


def test_halfwidth_matches_opendp_accuracy_of_a_real_release():
    con = raw_connection()
    insert_headcount(con, "tiny", TINY_HEADCOUNT, as_of=date(2025, 1, 1))
    from privacy_synth import tiny_events
    insert_events(con, tiny_events())
    cells = draw_release(con, "tiny", "2025-03", DEFAULT_POLICY).cells
    shown = cells.filter(~pl.col("suppressed") & (pl.col("metric") == "engaged_employees") & (pl.col("dimension") == "total"))
    real = (shown["ci_high"] - shown["value"]).item()
    expected = expected_interval_halfwidths(DEFAULT_POLICY).filter(
        (pl.col("metric") == "engaged_employees") & (pl.col("dimension") == "breakdowns"))["halfwidth"].item()
    assert abs(real - expected) <= 1.0  # OpenDP rounds the discrete interval up to whole people


def test_suppression_share_from_public_headcount_only():
    big = TINY_HEADCOUNT.with_columns(pl.col("headcount") * 100, customer_id=pl.lit("big"))
    small = TINY_HEADCOUNT.with_columns(customer_id=pl.lit("small"))
    share = expected_suppression_share(DEFAULT_POLICY, pl.concat([big, small]))
    s = dict(zip(share["customer_id"], share["expected_share"]))
    assert 0 <= s["big"] < s["small"] <= 1
    assert s["small"] > 0.9  # 15 % of ~100 people: almost everything hidden
    # a stricter k hides more; the published public_headcount form gives the same answer
    strict = expected_suppression_share(apply_policy_updates(DEFAULT_POLICY, {"k": 20}), big)
    assert strict["expected_share"].item() > s["big"]
    from privacy.structure import build_structure
    public = build_structure(big, DEFAULT_POLICY.k, "big", date(2025, 1, 1)).public_headcount
    again = expected_suppression_share(DEFAULT_POLICY, public)
    assert again["expected_share"].item() == pytest.approx(s["big"])
