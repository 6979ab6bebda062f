"""Thresholds read noisy outputs only; suppressed cells cannot be recovered by subtraction."""

from __future__ import annotations

import re

import polars as pl
import pytest
from privacy_synth import make_tiny

from privacy.policy import DEFAULT_POLICY, apply_policy_updates
from privacy.release import draw_release
from privacy.suppression import NOISY_COLUMNS, SUPPRESSION_SQL, apply_thresholds

HEADCOUNT = pl.DataFrame({"dimension": ["total", "department", "department"], "group_value": ["all", "X", "Y"],
                          "headcount": [100, 50, 50]})


def _noisy(engaged_x: float, scorers_x: float, sd: float = 5.0) -> pl.DataFrame:
    rows = []
    for g, dim, e, n in (("all", "total", 80.0, 60.0), ("X", "department", engaged_x, scorers_x), ("Y", "department", 40.0, 30.0)):
        for agg, v in (("engaged", e), ("contacts", 3 * e), ("who5_sum", 50 * n), ("who5_n", n),
                       ("satisfaction_sum", 300 * n), ("satisfaction_n", n)):
            rows.append(("people", dim, g, agg, v, sd, sd, 2 * sd, 2.3 * sd))
    return pl.DataFrame(rows, schema=list(NOISY_COLUMNS), orient="row")


def _cells(noisy, policy=DEFAULT_POLICY):
    return apply_thresholds(noisy, HEADCOUNT, customer_id="c", period="2025-03", k=policy.k, k_scores=policy.k_scores, z=policy.z)


def test_rule_uses_the_noisy_value_and_its_sd():
    thr = 10 + 1.645 * 5.0  # 18.225
    shown = _cells(_noisy(18.3, 18.3)).filter(pl.col("group_value") == "X")
    assert not shown["suppressed"].any()
    assert shown.filter(pl.col("metric") == "engaged_employees")["value"].item() == 18.3
    assert shown.filter(pl.col("metric") == "uptake_rate")["value"].item() == pytest.approx(18.3 / 50)
    hidden = _cells(_noisy(18.2, 40.0)).filter(pl.col("group_value") == "X")
    assert hidden["suppressed"].all() and hidden["value"].null_count() == 5 and hidden["ci_low"].null_count() == 5
    assert set(hidden["reason"]) == {"fewer than k=10 people (noisy)"}
    means_only = _cells(_noisy(30.0, 18.0)).filter(pl.col("group_value") == "X")
    sup = dict(zip(means_only["metric"], means_only["suppressed"]))
    assert sup == {"engaged_employees": False, "contacts": False, "uptake_rate": False, "who5_mean": True, "satisfaction_mean": True}
    assert means_only.filter(pl.col("metric") == "who5_mean")["reason"].item() == "fewer than k_scores=10 people with a score (noisy)"
    assert thr < 18.3


def test_negative_noisy_values_are_stored_unclamped_and_intervals_follow_accuracy():
    noisy = _noisy(30.0, 30.0).with_columns(
        pl.when((pl.col("group_value") == "X") & (pl.col("aggregate") == "contacts")).then(-7.0).otherwise(pl.col("value")).alias("value")
    )
    x = _cells(noisy).filter(pl.col("group_value") == "X")
    contacts = x.filter(pl.col("metric") == "contacts").row(0, named=True)
    assert (contacts["value"], contacts["ci_low"], contacts["ci_high"]) == (-7.0, -17.0, 3.0)
    who5 = x.filter(pl.col("metric") == "who5_mean").row(0, named=True)
    s, a_s, n, a_n = 1500.0, 11.5, 30.0, 11.5
    assert who5["value"] == pytest.approx(50.0)
    assert who5["ci_low"] == pytest.approx((s - a_s) / (n + a_n)) and who5["ci_high"] == pytest.approx((s + a_s) / (n - a_n))


def test_sql_reads_only_noisy_outputs_and_public_headcount():
    """The threshold SQL can only see OpenDP outputs: its input relation has no true count at all."""
    tables = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", SUPPRESSION_SQL))
    assert tables == {"noisy", "headcount", "n", "d", "cells"}
    assert set(NOISY_COLUMNS) == {"part", "dimension", "group_value", "aggregate", "value", "scale", "sd", "acc", "acc_half"}
    with pytest.raises(ValueError, match="extra \\['true_count'\\]"):
        apply_thresholds(_noisy(30, 30).with_columns(true_count=pl.lit(3)), HEADCOUNT, customer_id="c",
                         period="2025-03", k=10, k_scores=10, z=1.645)


def test_true_count_below_k_can_be_published_when_the_noisy_count_passes():
    """Legal has 5 engaged people (true < k). With z = 0 its noisy count passes about half the time."""
    con = make_tiny()
    policy = apply_policy_updates(DEFAULT_POLICY, {"z": 0.0})
    published = hidden = 0
    for _ in range(80):  # P(Legal shown) ≈ 0.19 per draw: both outcomes occur early
        cells = draw_release(con, "tiny", "2025-03", policy).cells
        legal = cells.filter((pl.col("group_value") == "Legal") & (pl.col("metric") == "engaged_employees")).row(0, named=True)
        if legal["suppressed"]:
            hidden += 1
        else:
            published += 1
            assert legal["value"] >= policy.k  # decided on the noisy value, which is what is stored
        if published and hidden:
            break
    assert published and hidden  # the decision varies with the noise, not with the (fixed) true count


def test_subtracting_visible_cells_from_the_total_does_not_recover_a_hidden_cell():
    """Legal (5 people) is hidden; total − visible departments − the totals-only people still carries noise ≥ σ."""
    con = make_tiny()
    errors = []
    sigma = None
    for _ in range(40):
        cells = draw_release(con, "tiny", "2025-03", DEFAULT_POLICY).cells.filter(pl.col("metric") == "engaged_employees")
        values = dict(zip(zip(cells["dimension"], cells["group_value"]), cells["value"]))
        if values[("department", "Legal")] is not None:
            continue
        visible = sum(values[("department", d)] or 0.0 for d in ("Ops", "Sales", "Empty"))
        # an attacker who even knows the 5 totals-only people (Tiny 2 + Ghost 3) exactly
        estimate = values[("total", "all")] - visible - 5
        errors.append(estimate - 5)
        sigma = sigma or 5.7735  # sd of one engaged cell under the default policy
    assert len(errors) >= 20
    sd = pl.Series(errors).std()
    assert sd > sigma  # sum of 4 independent noises: sd ≈ 2σ; at least one cell's noise, never an exact recovery
    assert sum(abs(e) < 0.5 for e in errors) < len(errors) / 4
