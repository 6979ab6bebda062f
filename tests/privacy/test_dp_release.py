"""End-to-end draws of one release: keys, accounting, thresholds on noisy values only."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import polars as pl
import pytest
from privacy_synth import make_tiny, newcomer_events, prepare_release, tiny_policy

from privacy import _opendp_compat as compat
from privacy.budget import PureEpsilon, Rho, release_cost
from privacy.contract import SERVICES, TOPICS
from privacy.measure import AccountingMismatch, measure
from privacy.plan import PEOPLE_DIMENSIONS, REMAINDER
from privacy.policy import DEFAULT_POLICY
from privacy.release import DrawnRelease, draw_release
from privacy.suppression import CELL_COLUMNS, STATUSES

ENGAGEMENT = {"engaged_employees", "contacts", "uptake_rate"}
WELLBEING = {"who5_mean", "wellbeing_low_share", "wellbeing_improved_share", "satisfaction_mean"}


def _prepare(con, policy, period="2025-03", customer="tiny"):
    return prepare_release(con, customer, policy, period)


def test_cells_cover_every_public_key_and_no_raw_key(tiny_con):
    policy = tiny_policy()
    r = draw_release(tiny_con, "tiny", "2025-03", policy)
    assert isinstance(r, DrawnRelease) and r.granularity == "month" and r.cost == release_cost(policy, "2025-03")
    assert tuple(r.cells.columns) == CELL_COLUMNS
    keys = set(r.cells.select("dimension", "group_value").unique().iter_rows())
    expected = (
        {("total", "all")}
        | {("department", d) for d in ("Ops", "Sales", "Legal", "Empty")}
        | {("site", "A"), ("site", "B")}
    )
    assert keys == expected  # 'Empty' gets a (noisy) value; 'Ghost' (raw only), 'Tiny' (< k) and the remainder do not
    assert not r.cells["group_value"].str.starts_with("[").any() and REMAINDER not in set(r.cells["group_value"])
    for _, g in r.cells.group_by("dimension", "group_value"):
        assert set(g["metric"]) == ENGAGEMENT
    assert set(r.cells["status"]) <= set(STATUSES)
    # not published ⇔ value and interval NULL, with a reason
    sup = r.cells.filter(pl.col("suppressed"))
    assert (sup["status"] != "published").all() and sup["value"].null_count() == sup.height
    assert sup["ci_low"].null_count() == sup.height and sup["reason"].null_count() == 0
    shown = r.cells.filter(~pl.col("suppressed"))
    assert shown.height and shown["value"].null_count() == 0 and shown["reason"].null_count() == shown.height
    assert ((shown["ci_low"] <= shown["value"]) & (shown["value"] <= shown["ci_high"])).all()
    assert (shown["noise_sd"] > 0).all()
    # no identifier of any kind leaves the function
    assert not any("employee" in c for c in r.cells.columns + r.public_headcount.columns)
    assert set(r.public_headcount.columns) == {"customer_id", "as_of", "dimension", "group_value", "headcount"}
    # the allocation table says which breakdowns were measured and why not
    alloc = r.allocations
    assert set(alloc["dimension"]) == set(PEOPLE_DIMENSIONS)
    role = alloc.filter(pl.col("dimension") == "role").row(0, named=True)
    assert not role["measured"] and "only repeat the organisation total" in role["reason"]
    assert alloc["share"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "updates", [{}, {"accounting": "pure"}, {"granularity.wellbeing": "month", "epsilon_annual": 12}]
)
def test_release_cost_equals_the_compositor_budget_and_opendp_map(tiny_con, updates):
    policy = tiny_policy(**updates)
    frame, plan, _ = _prepare(tiny_con, policy)
    m = measure(frame, plan)
    cost = release_cost(policy, "2025-03")
    expected = cost.budget.value  # ρ under zCDP, ε under pure DP
    assert isinstance(plan.budget, PureEpsilon if policy.accounting == "pure" else Rho)
    assert m.compositor_loss == pytest.approx(expected, rel=1e-12)
    # OpenDP's own privacy map of each query (d_in = one employee) adds up to the release budget
    assert sum(m.query_losses) <= expected * (1 + 1e-9)
    assert sum(m.query_losses) == pytest.approx(expected, rel=1e-6)
    assert [q.expected_loss() for q in plan.queries] == pytest.approx(list(m.query_losses), rel=1e-6)


def test_summarize_scale_equals_hand_computed_sensitivity(tiny_con):
    policy = tiny_policy(
        **{"granularity.wellbeing": "month", "granularity.services": "month", "granularity.topics": "month"}
    )
    frame, plan, _ = _prepare(tiny_con, policy)
    m = measure(frame, plan)
    assert [q.dimension for q in plan.queries] == ["total", "department", "site", None]
    rho = release_cost(policy, "2025-03").rho
    shares = policy.release_tables("2025-03")
    # the allocation: a table's share of the release × a measured level's share of the table (documented weights)
    alloc = {(r["figure_set"], r["dimension"]): r["share"] for r in plan.allocations.iter_rows(named=True)}
    for q, summary in zip(plan.queries[:3], m.summaries[:3]):
        scales = dict(zip(summary["column"], summary["scale"]))
        level = policy.breakdown_weights[q.dimension]
        measured = [lv for lv in PEOPLE_DIMENSIONS if alloc[("engagement", lv)] > 0]
        assert alloc[("engagement", q.dimension)] == pytest.approx(
            shares["engagement"] * level / sum(policy.breakdown_weights[lv] for lv in measured)
        )
        # engaged: weight 0.75 of the engagement table's budget, L₀ = 1, bound 1
        rho_engaged = rho * alloc[("engagement", q.dimension)] * 0.75
        assert scales["engaged"] == pytest.approx(math.sqrt(1 / (2 * rho_engaged)), rel=1e-6)
        if ("wellbeing", q.dimension) in alloc and alloc[("wellbeing", q.dimension)] > 0:
            # the centred WHO-5 sum: bound 50 (half that of a sum on [0, 100]); weights sum to 1
            rho_who5 = rho * alloc[("wellbeing", q.dimension)] * 0.15
            assert scales["who5_csum"] == pytest.approx(50 * math.sqrt(1 / (2 * rho_who5)), rel=1e-6)
            rho_low = rho * alloc[("wellbeing", q.dimension)] * 0.15  # the ±1 low-wellbeing sum: bound 1
            assert scales["low_diff"] == pytest.approx(math.sqrt(1 / (2 * rho_low)), rel=1e-6)
    # services and topics: one query; an employee counts in ≤ 2 services + ≤ 2 topics, accounted exactly (L₀ = 4)
    usage = dict(zip(m.summaries[3]["column"], m.summaries[3]["scale"]))
    g_usage = policy.max_services_per_period + policy.max_topics_per_period
    assert compat.accounted_groups(g_usage, n_keys=len(SERVICES) + len(TOPICS)) == g_usage == 4
    rho_usage = rho * (shares["services"] + shares["topics"])
    assert m.query_losses[3] == pytest.approx(rho_usage, rel=1e-6)
    assert usage["engaged"] == pytest.approx(math.sqrt(g_usage / (2 * rho_usage)), rel=1e-6)


def test_accounting_mismatch_is_refused(tiny_con):
    """If OpenDP's sensitivity differed from ours (e.g. opendp#2945), nothing is released."""
    frame, plan, _ = _prepare(tiny_con, tiny_policy())
    # claim a group bound OpenDP does not see: the hand-computed loss no longer matches its map
    wrong = replace(plan, queries=tuple(replace(q, accounted_groups=q.accounted_groups + 1) for q in plan.queries))
    with pytest.raises(AccountingMismatch, match="nothing was released"):
        measure(frame, wrong)


def test_neighbouring_dataset_changes_each_cell_by_at_most_the_bound():
    """One employee added (with many contacts everywhere) moves the true aggregates by the per-employee bound only."""
    newcomer = newcomer_events()
    policy = tiny_policy(**{"granularity.wellbeing": "month"})
    frame_d, plan, _ = _prepare(make_tiny(), policy)
    frame_n, _, _ = _prepare(make_tiny(newcomer), policy)
    clip = plan.bounds.column_bounds()
    cols = list(clip)

    def agg(f):
        return (
            f.cells()
            .group_by("part", "dimension", "group_value")
            .agg(pl.len().alias("n"), *[pl.col(c).sum() for c in cols])
        )

    diff = (
        agg(frame_n).join(agg(frame_d), on=["part", "dimension", "group_value"], how="full", coalesce=True).fill_null(0)
    )
    bounds = {"n": 1, **{c: max(abs(lo), abs(hi)) for c, (lo, hi) in clip.items()}}
    assert bounds["who5_c"] == 50 and bounds["sat_c"] == 200 and bounds["low_pm"] == 1
    for c, b in bounds.items():
        d = (diff[c] - diff[f"{c}_right"]).abs()
        assert d.max() <= b, c
        for part, groups in (("people", 4), ("usage", policy.max_services_per_period + policy.max_topics_per_period)):
            assert (
                diff.filter(pl.col("part") == part)[c] != diff.filter(pl.col("part") == part)[f"{c}_right"]
            ).sum() <= groups
    m = measure(frame_n, plan)
    assert sum(m.query_losses) <= release_cost(policy, "2025-03").budget.value * (1 + 1e-9)


def test_realistic_release_is_fast_and_lands_near_the_truth(realistic_con):
    import time

    start = time.perf_counter()
    r = draw_release(realistic_con, "acme", "2025-03", DEFAULT_POLICY)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"one customer-month took {elapsed:.2f} s"
    total = r.cells.filter((pl.col("dimension") == "total") & (pl.col("metric") == "engaged_employees"))
    true_engaged = realistic_con.execute(
        "SELECT count(DISTINCT employee) FROM events WHERE occurred_on >= DATE '2025-03-01' AND occurred_on < DATE '2025-04-01'"
    ).fetchone()[0]
    ci = total.row(0, named=True)
    assert not ci["suppressed"]
    # One draw cannot test coverage (tests/privacy/test_dp_statistical.py does, over many): here the
    # truth must lie within three half-widths of the interval's centre (a miss once in ~10^5 draws
    # at a 90-95 % level), not inside the interval itself (a miss once in 10-20 draws).
    half = (ci["ci_high"] - ci["ci_low"]) / 2
    assert ci["ci_low"] - 2 * half - 5 <= true_engaged <= ci["ci_high"] + 2 * half + 5


def test_default_cadence_engagement_monthly_wellbeing_services_topics_quarterly(tiny_con):
    policy = tiny_policy()
    monthly = draw_release(tiny_con, "tiny", "2025-03", policy)
    quarterly = draw_release(tiny_con, "tiny", "2025-Q1", policy)
    assert set(monthly.cells["metric"]) == ENGAGEMENT and "service" not in set(monthly.cells["dimension"])
    assert (
        set(quarterly.cells.filter(pl.col("dimension").is_in(["total", "department", "site", "role"]))["metric"])
        == WELLBEING
    )
    assert {"service", "topic"} <= set(quarterly.cells["dimension"])
    assert quarterly.granularity == "quarter" and quarterly.cost.rho == pytest.approx(
        release_cost(policy, "2025-Q1").rho
    )


def test_empty_period_gives_noisy_zeros_for_every_key(tiny_con):
    r = draw_release(tiny_con, "tiny", "2024-07", tiny_policy())
    assert r.cells.height > 0 and r.cells["suppressed"].mean() > 0.9  # all public keys present, nearly all hidden


def test_a_breakdown_that_cannot_be_informative_is_not_measured_and_its_share_goes_to_the_rest(tiny_con):
    """The plan is public: at the defaults' 3 % uptake no group of the tiny organisation could reach k."""
    _, default_plan, _ = _prepare(tiny_con, tiny_policy(**{"assumptions.monthly_uptake": 0.03}))
    _, tiny_plan, _ = _prepare(tiny_con, tiny_policy())
    assert [q.dimension for q in default_plan.queries] == ["total"]
    assert [q.dimension for q in tiny_plan.queries] == ["total", "department", "site"]
    assert default_plan.budget == tiny_plan.budget  # the same cost, spent on fewer figures
    total_default = default_plan.aggregate("people", "total", "engaged")
    total_tiny = tiny_plan.aggregate("people", "total", "engaged")
    assert total_default.sd < total_tiny.sd  # the total got the breakdowns' share
    reasons = default_plan.allocations.filter(~pl.col("measured"))["reason"].to_list()
    assert all(r.startswith("not measured:") for r in reasons) and any(
        "fewer than two department" in r for r in reasons
    )


def test_the_plan_never_depends_on_the_data():
    """Same public structure, different events: the same plan and scales."""
    from privacy_synth import TINY_HEADCOUNT, insert_events, insert_headcount, raw_connection, tiny_events

    con = raw_connection()
    insert_headcount(con, "tiny", TINY_HEADCOUNT, as_of=date(2025, 1, 1))
    insert_events(con, tiny_events().filter(pl.col("department") == "Ops"))
    _, plan_a, _ = _prepare(con, tiny_policy())
    _, plan_b, _ = _prepare(make_tiny(), tiny_policy())
    assert plan_a.signature() == plan_b.signature()


@pytest.mark.parametrize("failing", ["people", "usage"])
def test_a_failing_part_aborts_the_whole_draw(tiny_con, monkeypatch, failing):
    """The two parts run side by side; if one fails, draw_release raises and returns nothing at all."""
    import privacy.release as release_mod

    def boom(*args, **kwargs):
        raise RuntimeError(f"{failing} reduction failed")

    monkeypatch.setattr(release_mod, f"reduce_{failing}", boom)
    with pytest.raises(RuntimeError, match=f"{failing} reduction failed"):
        release_mod.draw_release(tiny_con, "tiny", "2025-Q1", tiny_policy())
