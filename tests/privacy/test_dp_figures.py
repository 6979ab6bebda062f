"""Consistent, honest figures: parts add up, values inside their interval and range, roll-ups apart."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import polars as pl
import pytest
from privacy_synth import TINY_HEADCOUNT, insert_headcount, make_tiny, raw_connection, tiny_policy

from privacy.consistency import reconcile
from privacy.estimates import METRIC_BY_NAME
from privacy.measure import measure
from privacy.periods import parse_period
from privacy.plan import REMAINDER, plan_release
from privacy.reduce import reduce_period
from privacy.release import draw_release
from privacy.structure import StructureError, build_structure, is_rollup, load_structure, small_teams_label


def _noisy(con, policy, period="2025-03"):
    s = load_structure(con, "tiny", period, policy.k)
    plan = plan_release(policy, period, s)
    frame = reduce_period(
        con,
        "tiny",
        parse_period(period),
        plan.bounds,
        s.key_map,
        with_services="services" in plan.tables,
        with_topics="topics" in plan.tables,
    )
    return measure(frame, plan).noisy.with_columns(pl.lit("tiny").alias("customer_id")), plan


def test_every_breakdown_adds_up_to_the_total_after_reconciliation():
    noisy, plan = _noisy(make_tiny(), tiny_policy(**{"granularity.wellbeing": "month"}))
    people = noisy.filter(pl.col("part") == "people")
    raw_sums = (
        people.filter(pl.col("dimension") != "total").group_by("aggregate", "dimension").agg(pl.col("value").sum())
    )
    raw_total = people.filter(pl.col("dimension") == "total").select("aggregate", pl.col("value").alias("total"))
    assert (
        raw_sums.join(raw_total, on="aggregate").select((pl.col("value") - pl.col("total")).abs().max()).item()
    ) > 0.5
    fixed = reconcile(noisy).filter(pl.col("part") == "people")
    sums = fixed.filter(pl.col("dimension") != "total").group_by("aggregate", "dimension").agg(pl.col("value").sum())
    total = fixed.filter(pl.col("dimension") == "total").select("aggregate", pl.col("value").alias("total"))
    both = sums.join(total, on="aggregate")
    assert both.height == sum(len(q.aggregates) for q in plan.queries if q.part == "people" and q.dimension != "total")
    assert both.height >= 4
    assert (
        both["value"] - both["total"]
    ).abs().max() < 1e-6  # consistent: department cells (with the remainder) = total
    assert REMAINDER in set(fixed["group_value"])
    # post-processing narrows: every reconciled sd is at most the raw one, the total's strictly
    assert (fixed["sd"] <= fixed["raw_sd"] + 1e-12).all()
    with_parts = fixed.filter((pl.col("dimension") == "total") & pl.col("aggregate").is_in(["engaged", "contacts"]))
    assert (with_parts["sd"] < with_parts["raw_sd"]).all()  # measured in breakdowns too: narrower
    # other parts (services, topics) are left as they were
    assert (
        reconcile(noisy)
        .filter(pl.col("part") == "usage")["value"]
        .equals(noisy.filter(pl.col("part") == "usage")["value"])
    )


@pytest.mark.dp_statistical
def test_reconciled_variance_formula_matches_simulation():
    """The closed-form variances of the consistency step, against many simulated noise draws."""
    rng = np.random.default_rng(3)
    truth = {"all": 100.0, "a": 40.0, "b": 35.0, REMAINDER: 25.0}
    sds = {"total": 4.0, "department": 6.0}
    draws = []
    for _ in range(4000):
        rows = [
            (
                "c",
                "people",
                "total",
                "all",
                "engaged",
                truth["all"] + sds["total"] * rng.standard_normal(),
                1.0,
                sds["total"],
            )
        ]
        rows += [
            (
                "c",
                "people",
                "department",
                g,
                "engaged",
                truth[g] + sds["department"] * rng.standard_normal(),
                1.0,
                sds["department"],
            )
            for g in ("a", "b", REMAINDER)
        ]
        draws.append(
            pl.DataFrame(
                rows,
                schema=["customer_id", "part", "dimension", "group_value", "aggregate", "value", "scale", "sd"],
                orient="row",
            )
        )
    fixed = pl.concat([reconcile(d) for d in draws])
    stats = fixed.group_by("group_value").agg(
        pl.col("value").mean(), pl.col("value").std().alias("emp_sd"), pl.col("sd").first()
    )
    for row in stats.iter_rows(named=True):
        assert row["value"] == pytest.approx(truth[row["group_value"]], abs=4 * row["sd"] / math.sqrt(4000))  # unbiased
        assert row["emp_sd"] == pytest.approx(row["sd"], rel=4 * math.sqrt(1 / (2 * 4000)))  # the claimed sd
    w = 1 / 16 + 1 / (3 * 36)
    assert stats.filter(pl.col("group_value") == "all")["sd"].item() == pytest.approx(math.sqrt(1 / w))


@pytest.mark.slow
def test_no_published_value_lies_outside_its_interval_or_its_range():
    con = make_tiny()
    policies = (
        tiny_policy(),
        tiny_policy(**{"k": 3, "k_scores": 3, "z": 0.5}),
        tiny_policy(
            **{
                f"max_interval_width.{m}": w
                for m, w in (
                    ("who5_mean", 100),
                    ("satisfaction_mean", 4),
                    ("wellbeing_low_share", 1),
                    ("wellbeing_improved_share", 1),
                )
            }
        ),
    )
    seen = 0
    for policy in policies:
        for period in ("2025-03", "2025-Q1"):
            for _ in range(15):
                cells = draw_release(con, "tiny", period, policy).cells.filter(pl.col("status") == "published")
                for row in cells.iter_rows(named=True):
                    m = METRIC_BY_NAME.get(row["metric"])
                    low, high = (m.low, m.high) if m else (0.0, math.inf)
                    assert row["ci_low"] <= row["value"] <= row["ci_high"], row
                    assert low <= row["ci_low"] and row["ci_high"] <= high, row
                    seen += 1
    assert seen > 300


def test_a_real_department_named_like_a_rollup_is_never_merged_with_one():
    """The audit's case: a department called 'Small teams (site s1)' beside small teams at site s1."""
    rows = pl.DataFrame(
        [
            ("s1", "Small teams (site s1)", "staff", 62),
            ("s1", "Mini1", "staff", 4),
            ("s1", "Mini2", "staff", 8),
            ("s1", "Ops", "staff", 40),
        ],
        schema=["site", "department", "role", "headcount"],
        orient="row",
    )
    s = build_structure(rows, 10, "c", date(2025, 1, 1))
    depts = dict(
        s.public_headcount.filter(pl.col("dimension") == "department").select("group_value", "headcount").iter_rows()
    )
    assert depts["Small teams (site s1)"] == 62  # the real department keeps its own headcount
    assert depts[small_teams_label("s1")] == 12 and is_rollup(small_teams_label("s1"))
    mapping = dict(s.key_map.filter(pl.col("dimension") == "department").select("source", "group_value").iter_rows())
    assert mapping["Small teams (site s1)"] == "Small teams (site s1)" and mapping["Mini1"] == small_teams_label("s1")
    # a name in the roll-up namespace is refused with what to do
    bad = rows.with_columns(
        pl.when(pl.col("department") == "Ops")
        .then(pl.lit("[Small teams, site s1]"))
        .otherwise(pl.col("department"))
        .alias("department")
    )
    with pytest.raises(StructureError, match="reserved for rolled-up groups"):
        build_structure(bad, 10, "c", date(2025, 1, 1))
    con = raw_connection()
    insert_headcount(con, "c", bad, as_of=date(2025, 1, 1))
    with pytest.raises(StructureError, match="rename them in the headcount file"):
        load_structure(con, "c", "2025-03", 10)
    assert TINY_HEADCOUNT.height  # the tiny organisation has no such names
