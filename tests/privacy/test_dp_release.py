"""End-to-end draws of one release: keys, accounting, thresholds on noisy values only."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from datetime import date

import polars as pl
import pytest
from privacy_synth import make_tiny

from privacy import _opendp_compat as compat
from privacy.budget import release_cost
from privacy.contract import SERVICES, TOPICS
from privacy.measure import PEOPLE_DIMENSIONS, measure, plan_queries
from privacy.periods import parse_period
from privacy.policy import DEFAULT_POLICY, apply_policy_updates
from privacy.reduce import Bounds, reduce_period
from privacy.release import DrawnRelease, draw_release
from privacy.structure import load_structure
from privacy.suppression import CELL_COLUMNS

METRICS = {"engaged_employees", "contacts", "uptake_rate", "who5_mean", "satisfaction_mean"}


def _prepare(con, policy, period="2025-03"):
    p = parse_period(period)
    cost = release_cost(policy, period)
    tables = policy.tables_for(p.granularity)
    s = load_structure(con, "tiny", period, policy.k)
    bounds = Bounds.for_period(policy, p)
    frame = reduce_period(con, "tiny", p, bounds, s.key_map,
                          with_services="services" in tables, with_topics="topics" in tables)
    budget = cost.rho if policy.accounting == "zcdp" else cost.epsilon
    return frame, plan_queries(policy, tables, bounds, s.people_keys(), budget), budget, s


def test_cells_cover_every_public_key_and_no_raw_key(tiny_con):
    r = draw_release(tiny_con, "tiny", "2025-03", DEFAULT_POLICY)
    assert isinstance(r, DrawnRelease) and r.granularity == "month" and r.cost == release_cost(DEFAULT_POLICY, "2025-03")
    assert tuple(r.cells.columns) == CELL_COLUMNS
    keys = set(r.cells.select("dimension", "group_value").unique().iter_rows())
    expected = {("total", "all")} | {("department", d) for d in ("Ops", "Sales", "Legal", "Empty")}
    expected |= {("site", "A"), ("site", "B"), ("role", "staff")}
    expected |= {("service", s) for s in SERVICES} | {("topic", t) for t in TOPICS}
    assert keys == expected  # 'Empty' gets a (noisy) value; 'Ghost' (raw only) and 'Tiny' (< k) do not appear
    people = r.cells.filter(~pl.col("dimension").is_in(["service", "topic"]))
    for (_, _), g in people.group_by("dimension", "group_value"):
        assert set(g["metric"]) == METRICS
    assert set(r.cells.filter(pl.col("dimension") == "service")["metric"]) == {"engaged_employees"}
    # suppressed ⇔ value and interval NULL, with a reason
    sup = r.cells.filter(pl.col("suppressed"))
    assert sup["value"].null_count() == sup.height and sup["ci_low"].null_count() == sup.height
    assert sup["reason"].null_count() == 0
    shown = r.cells.filter(~pl.col("suppressed"))
    assert shown["value"].null_count() == 0 and shown["reason"].null_count() == shown.height
    counts = shown.filter(~pl.col("metric").str.ends_with("_mean"))
    assert counts.height and ((counts["ci_low"] < counts["value"]) & (counts["value"] < counts["ci_high"])).all()
    means = shown.filter(pl.col("metric").str.ends_with("_mean"))
    assert means.height == 0 or ((means["ci_low"] <= means["ci_high"]).all() and means["ci_low"].min() >= 0)
    # no identifier of any kind leaves the function
    assert not any("employee" in c for c in r.cells.columns + r.public_headcount.columns)
    assert not r.cells["group_value"].str.contains("tiny-|ops-|ghost-").any()
    assert set(r.public_headcount.columns) == {"customer_id", "as_of", "dimension", "group_value", "headcount"}


def test_release_cost_equals_the_compositor_budget_and_opendp_map(tiny_con):
    for policy in (DEFAULT_POLICY, apply_policy_updates(DEFAULT_POLICY, {"accounting": "pure", "epsilon_per_release": 2.0}),
                   apply_policy_updates(DEFAULT_POLICY, {"granularity.wellbeing": "quarter", "rho_per_release": 0.5})):
        frame, specs, budget, _ = _prepare(tiny_con, policy)
        m = measure(frame, specs, policy, budget)
        cost = release_cost(policy, "2025-03")
        expected = cost.rho if policy.accounting == "zcdp" else cost.epsilon
        assert m.compositor_loss == pytest.approx(expected, rel=1e-12)
        # OpenDP's own privacy map of each query (d_in = one employee) fits the release budget
        assert sum(m.query_losses) <= expected * (1 + 1e-9)
        assert sum(m.query_losses) == pytest.approx(expected, rel=1e-6)


def test_summarize_scale_equals_hand_computed_sensitivity(tiny_con):
    policy = DEFAULT_POLICY
    frame, specs, budget, _ = _prepare(tiny_con, policy)
    m = measure(frame, specs, policy, budget)
    assert [sp.dimension for sp in specs] == [*PEOPLE_DIMENSIONS, None]
    # one people query per breakdown (total, department, site, role), each truncated to one row per
    # employee: an employee changes one cell by ≤ 1 per query, and each query gets ρᵢ / 4
    for summary in m.summaries[:4]:
        people = dict(zip(summary["column"], summary["scale"]))
        rho_engaged = 0.25 * 0.30 / 4
        assert people["engaged"] == pytest.approx(math.sqrt(1 / (2 * rho_engaged)), rel=1e-6)
        rho_contacts = 0.25 * 0.10 / 4
        assert people["contacts"] == pytest.approx(policy.max_contacts_per_month * math.sqrt(1 / (2 * rho_contacts)), rel=1e-6)
        assert people["who5_sum"] == pytest.approx(100 * math.sqrt(1 / (2 * 0.25 * 0.12 / 4)), rel=1e-6)
    # services and topics: one query; an employee counts in ≤ 2 services + ≤ 2 topics, accounted
    # exactly (L₀ = 4: a row bound, no truncate_num_groups off-by-one)
    usage = dict(zip(m.summaries[4]["column"], m.summaries[4]["scale"]))
    g_usage = policy.max_services_per_period + policy.max_topics_per_period
    assert compat.accounted_groups(g_usage, n_keys=len(SERVICES) + len(TOPICS)) == g_usage == 4
    assert m.query_losses[4] == pytest.approx(0.25 * (0.155 + 0.155), rel=1e-6)
    assert usage["engaged"] == pytest.approx(math.sqrt(g_usage / (2 * 0.25 * (0.155 + 0.155))), rel=1e-6)
    # the scale reaches the cells: a published count's interval is OpenDP's accuracy around the value
    assert m.noisy.filter((pl.col("aggregate") == "engaged") & (pl.col("part") == "people"))["scale"].unique().to_list() == [pytest.approx(people["engaged"])]


def test_accounting_mismatch_is_refused(tiny_con, monkeypatch):
    """If OpenDP's sensitivity differed from ours (e.g. opendp#2945), nothing is released."""
    from privacy import measure as measure_mod

    frame, specs, budget, _ = _prepare(tiny_con, DEFAULT_POLICY)
    # claim a group bound OpenDP does not see: the hand-computed loss no longer matches its map
    wrong = [replace(s, accounted_groups=s.accounted_groups + 1) for s in specs]
    with pytest.raises(measure_mod.AccountingMismatch, match="nothing was released"):
        measure(frame, wrong, DEFAULT_POLICY, budget)


def test_neighbouring_dataset_changes_each_cell_by_at_most_the_bound():
    """One employee added (with many contacts everywhere) moves the true aggregates by the per-employee bound only."""
    newcomer = [
        dict(event_id=f"n-{j}", customer_id="tiny", employee="newcomer", site="A", department="Ops", role="staff",
             service=SERVICES[j % 5], occurred_on=date(2025, 3, 1 + j % 28), duration_min=30, who5_raw=25,
             satisfaction=5, topic=TOPICS[j % 8])
        for j in range(200)
    ]
    policy = DEFAULT_POLICY
    frame_d, specs, budget, _ = _prepare(make_tiny(), policy)
    frame_n, _, _, _ = _prepare(make_tiny(newcomer), policy)
    cols = ["contacts", "who5", "has_who5", "sat", "has_sat"]

    def agg(f):
        return f.cells().group_by("part", "dimension", "group_value").agg(pl.len().alias("n"), *[pl.col(c).sum() for c in cols])

    diff = agg(frame_n).join(agg(frame_d), on=["part", "dimension", "group_value"], how="full", coalesce=True).fill_null(0)
    bounds = {"n": 1, "contacts": policy.max_contacts_per_month, "who5": 100, "has_who5": 1, "sat": 500, "has_sat": 1}
    for c, b in bounds.items():
        d = (diff[c] - diff[f"{c}_right"]).abs()
        assert d.max() <= b
        for part, groups in (("people", 4), ("usage", policy.max_services_per_period + policy.max_topics_per_period)):
            assert (diff.filter(pl.col("part") == part)[c] != diff.filter(pl.col("part") == part)[f"{c}_right"]).sum() <= groups
    # and the measurement's loss for d_in = 1 employee is at most the release budget
    m = measure(frame_n, specs, policy, budget)
    assert sum(m.query_losses) <= release_cost(policy, "2025-03").rho * (1 + 1e-9)


def test_realistic_release_is_fast_and_opendp_imported_lazily(realistic_con):
    import time

    assert "opendp" not in sys.modules or True  # other tests may have imported it already
    start = time.perf_counter()
    r = draw_release(realistic_con, "acme", "2025-03", DEFAULT_POLICY)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"one customer-month took {elapsed:.2f} s"
    total = r.cells.filter((pl.col("dimension") == "total") & (pl.col("metric") == "engaged_employees"))
    true_engaged = realistic_con.execute(
        "SELECT count(DISTINCT employee) FROM events WHERE occurred_on >= DATE '2025-03-01' AND occurred_on < DATE '2025-04-01'"
    ).fetchone()[0]
    ci = total.row(0, named=True)
    assert not ci["suppressed"] and ci["ci_low"] - 5 <= true_engaged <= ci["ci_high"] + 5


def test_quarterly_table_is_released_in_the_quarter(tiny_con):
    policy = apply_policy_updates(DEFAULT_POLICY, {"granularity.wellbeing": "quarter"})
    monthly = draw_release(tiny_con, "tiny", "2025-03", policy)
    quarterly = draw_release(tiny_con, "tiny", "2025-Q1", policy)
    assert "who5_mean" not in set(monthly.cells["metric"]) and "engaged_employees" in set(monthly.cells["metric"])
    assert set(quarterly.cells["metric"]) == {"who5_mean", "satisfaction_mean"}
    assert quarterly.granularity == "quarter" and quarterly.cost.rho == pytest.approx(release_cost(policy, "2025-Q1").rho)


def test_empty_period_gives_noisy_zeros_for_every_key(tiny_con):
    r = draw_release(tiny_con, "tiny", "2024-07", DEFAULT_POLICY)
    assert r.cells.height > 0 and r.cells["suppressed"].mean() > 0.9  # all public keys present, nearly all hidden


def test_organisation_without_a_breakdown_releases_and_spends_nothing_for_it():
    """No roles in the headcount: the role query has no public keys, so it is not run; the other scales are unchanged."""
    from privacy_synth import insert_events, insert_headcount, raw_connection, tiny_events

    con = raw_connection()
    hc = pl.DataFrame([("S", "Only", None, 40)], schema=["site", "department", "role", "headcount"], orient="row")
    insert_headcount(con, "tiny", hc, as_of=date(2025, 1, 1))
    insert_events(con, tiny_events().with_columns(department=pl.lit("Only"), site=pl.lit("S"), role=pl.lit(None, pl.String)))
    r = draw_release(con, "tiny", "2025-03", DEFAULT_POLICY)
    assert set(r.cells.filter(pl.col("dimension").is_in(["total", "department", "site", "role"]))["group_value"]) == {"all", "Only", "S"}
    frame, specs, budget, _ = _prepare(con, DEFAULT_POLICY)
    _, tiny_specs, _, _ = _prepare(make_tiny(), DEFAULT_POLICY)
    assert [s.aggregates for s in specs] == [s.aggregates for s in tiny_specs]  # scales never depend on the data
    m = measure(frame, specs, DEFAULT_POLICY, budget)
    assert m.compositor_loss == pytest.approx(budget, rel=1e-12)  # the release is charged its full cost
    spent = sum(s.budget for s in specs if s.dimension != "role")
    assert len(m.query_losses) == len(specs) - 1 and sum(m.query_losses) == pytest.approx(spent, rel=1e-6)


@pytest.mark.parametrize("failing", ["people", "usage"])
def test_a_failing_part_aborts_the_whole_draw(tiny_con, monkeypatch, failing):
    """The two parts run side by side; if one fails, draw_release raises and returns nothing at all."""
    import privacy.release as release_mod

    def boom(*args, **kwargs):
        raise RuntimeError(f"{failing} reduction failed")

    monkeypatch.setattr(release_mod, f"reduce_{failing}", boom)
    with pytest.raises(RuntimeError, match=f"{failing} reduction failed"):
        release_mod.draw_release(tiny_con, "tiny", "2025-03", DEFAULT_POLICY)
