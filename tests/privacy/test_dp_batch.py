"""Batched releases (one OpenDP measurement for several customers of one period) and OpenDP's own truncation."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import polars as pl
import pytest
from privacy_synth import (
    TINY_HEADCOUNT,
    insert_events,
    insert_headcount,
    make_tiny,
    newcomer_events,
    noiseless,
    prepare_release,
    tiny_events,
    tiny_policy,
)

from privacy.budget import release_cost
from privacy.measure import measure, measure_batch
from privacy.periods import parse_period
from privacy.plan import plan_release
from privacy.reduce import Reduced, reduce_period
from privacy.release import draw_release, draw_releases
from privacy.structure import load_structure

PERIOD = "2025-03"
POLICY = tiny_policy(
    **{"granularity.wellbeing": "month", "granularity.services": "month", "granularity.topics": "month"}
)


def _add_customer(
    con, customer: str, extra: list[dict] | None = None, headcount: pl.DataFrame = TINY_HEADCOUNT
) -> None:
    """Same organisation and the same employee pseudonyms as 'tiny', under another customer."""
    insert_headcount(con, customer, headcount, as_of=date(2025, 1, 1))
    ev = tiny_events(extra).with_columns(
        customer_id=pl.lit(customer), event_id=pl.lit(customer + "-") + pl.col("event_id")
    )
    insert_events(con, ev)


def _prepare(con, customer: str, policy=POLICY, period: str = PERIOD):
    frame, plan, _ = prepare_release(con, customer, policy, period)
    return frame, plan


BOUNDS = {
    "engaged": 1,
    "contacts": 8,
    "who5_n": 1,
    "who5_csum": 50,
    "low_diff": 1,
    "chg_n": 1,
    "improved_diff": 1,
    "sat_n": 1,
    "sat_csum": 200,
}


def test_batched_measurement_has_the_single_release_loss_and_scales():
    con = make_tiny()
    _add_customer(con, "tiny2")
    (fa, pa), (fb, pb) = _prepare(con, "tiny"), _prepare(con, "tiny2")
    assert pa.signature() == pb.signature()
    batch = measure_batch({"tiny": fa, "tiny2": fb}, {"tiny": pa, "tiny2": pb})
    single = measure(fa, pa)
    # OpenDP's own privacy map of the batched queries for one identifier (one employee of one
    # customer) is exactly one release's cost: the batch charges each customer what draw_release would
    cost = release_cost(POLICY, PERIOD).rho
    assert batch.compositor_loss == pytest.approx(cost, rel=1e-12)
    assert sum(batch.query_losses) == pytest.approx(sum(single.query_losses), rel=1e-9)
    assert sum(batch.query_losses) == pytest.approx(cost, rel=1e-6)
    for customer in ("tiny", "tiny2"):
        mine = batch.noisy.filter(pl.col("customer_id") == customer).drop("customer_id")
        cols = ["part", "dimension", "group_value", "aggregate", "scale", "sd"]
        assert mine.select(cols).sort(cols[:4]).equals(single.noisy.select(cols).sort(cols[:4]))


def test_a_customers_batched_cells_depend_on_its_own_employees_only():
    """Noiseless draws: customer A's cells are its true aggregates, whatever B's data; B's move by the bounds only."""
    con_d = make_tiny()
    _add_customer(con_d, "other")
    con_n = make_tiny()
    _add_customer(
        con_n, "other", extra=newcomer_events("other", prefix="other-n")
    )  # same pseudonym 'newcomer' never appears in 'tiny'
    policy = noiseless(POLICY)

    def values(con):
        (fa, pa), (fb, pb) = _prepare(con, "tiny", policy), _prepare(con, "other", policy)
        return measure_batch({"tiny": fa, "other": fb}, {"tiny": pa, "other": pb}).noisy, measure(fa, pa).noisy

    noisy_d, alone = values(con_d)
    noisy_n, _ = values(con_n)
    keys = ["part", "dimension", "group_value", "aggregate"]
    tiny_d = noisy_d.filter(pl.col("customer_id") == "tiny").select(*keys, "value").sort(keys)
    tiny_n = noisy_n.filter(pl.col("customer_id") == "tiny").select(*keys, "value").sort(keys)
    assert tiny_d.equals(tiny_n)  # B's newcomer changes nothing of A
    assert tiny_d.equals(alone.select(*keys, "value").sort(keys))  # and A batched = A alone
    total = tiny_d.filter((pl.col("dimension") == "total") & (pl.col("aggregate") == "engaged"))["value"].item()
    assert total == 50  # Ops 25 + Sales 15 + Legal 5 + Tiny 2 + Ghost 3 (outside the headcount: totals only)
    # B's cells move by at most the per-employee bound, in one cell per measured breakdown and ≤ G usage cells
    other = (
        noisy_n.filter(pl.col("customer_id") == "other")
        .join(noisy_d.filter(pl.col("customer_id") == "other"), on=["customer_id", *keys])
        .with_columns(d=(pl.col("value") - pl.col("value_right")).abs())
    )
    for agg, b in BOUNDS.items():
        assert other.filter((pl.col("aggregate") == agg) & (pl.col("part") == "people"))["d"].max() <= b, agg
    n_people_queries = len([q for q in _prepare(con_n, "other", policy)[1].queries if q.part == "people"])
    changed = (
        other.filter(pl.col("part") == "people").filter(pl.col("d") > 0).select("dimension", "group_value").unique()
    )
    assert changed.height == n_people_queries  # one cell in each people query
    assert other.filter(pl.col("part") == "usage").filter(pl.col("d") > 0).height == 4  # 2 services + 2 topics


def test_opendp_truncation_enforces_the_bounds_on_a_frame_that_breaks_them():
    """Defence in depth: a frame with several rows per employee, too many cells and huge values is truncated and clipped by OpenDP."""
    from privacy.contract import SERVICES

    assert len(SERVICES) > 4
    con = make_tiny()
    policy = noiseless(POLICY)
    frame, plan = _prepare(con, "tiny", policy)
    bad_id = 1 + int(max(frame.people["employee"].max(), frame.usage["employee"].max()))  # a new employee
    keys_of = {q.dimension: q.keys["group_value"].to_list() for q in plan.queries if q.part == "people"}
    # three rows for one employee, each in other cells of every breakdown, with values far beyond the bounds
    big = {
        "contacts": 1000,
        "has_who5": 3,
        "who5_c": 900,
        "low_pm": 5,
        "has_chg": 4,
        "imp_pm": 7,
        "has_sat": 2,
        "sat_c": 9000,
    }
    bad_people = pl.DataFrame(
        [
            dict(
                employee=bad_id,
                department=keys_of["department"][i],
                site=keys_of["site"][i % len(keys_of["site"])],
                role=None,
                **big,
            )
            for i in range(3)
        ],
        schema=frame.people.schema,
    )
    bad_usage = pl.DataFrame(
        [dict(employee=bad_id, dimension="service", group_value=s) for s in SERVICES], schema=frame.usage.schema
    )
    bad = Reduced(pl.concat([frame.people, bad_people]), pl.concat([frame.usage, bad_usage]))
    keys = ["part", "dimension", "group_value", "aggregate"]
    before = measure(frame, plan).noisy.select(*keys, "value")
    after = measure(bad, plan).noisy.select(*keys, "value")
    d = after.join(before, on=keys).with_columns(d=pl.col("value") - pl.col("value_right"))
    n_people_queries = len([q for q in plan.queries if q.part == "people"])
    for agg, b in BOUNDS.items():
        changed = d.filter((pl.col("part") == "people") & (pl.col("aggregate") == agg))
        assert changed["d"].max() == b, agg  # one row per employee, clipped to the bound
        assert changed.filter(pl.col("d") != 0).height == n_people_queries  # one cell per breakdown, not 3
    usage = d.filter(pl.col("part") == "usage")
    assert usage["d"].max() == 1 and usage.filter(pl.col("d") != 0).height == 4  # G = 2 + 2 usage cells


def test_draw_releases_matches_draw_release_per_customer():
    con = make_tiny()
    _add_customer(con, "tiny2")
    # a very small organisation (one department, one site, no roles): its own plan, drawn alone
    small = pl.DataFrame([("S", "Only", None, 40)], schema=["site", "department", "role", "headcount"], orient="row")
    insert_headcount(con, "small", small, as_of=date(2025, 1, 1))
    insert_events(
        con,
        tiny_events().with_columns(
            customer_id=pl.lit("small"),
            department=pl.lit("Only"),
            site=pl.lit("S"),
            role=pl.lit(None, pl.String),
            event_id=pl.lit("s-") + pl.col("event_id"),
        ),
    )
    requests = [("tiny2", PERIOD), ("small", PERIOD), ("tiny", PERIOD), ("tiny", "2025-02")]
    out = draw_releases(con, requests, POLICY)
    assert [(r.customer_id, r.period) for r in out] == requests
    for r in out:
        ref = draw_release(con, r.customer_id, r.period, POLICY)
        assert r.cost == ref.cost and r.granularity == ref.granularity
        assert r.public_headcount.equals(ref.public_headcount) and r.allocations.equals(ref.allocations)
        assert (r.cells["customer_id"] == r.customer_id).all() and (r.cells["period"] == r.period).all()
        cols = ["dimension", "group_value", "metric"]
        assert r.cells.select(cols).equals(ref.cells.select(cols))  # same cells, same order
        counts = pl.col("metric").is_in(["engaged_employees", "contacts"])  # a ratio's sd depends on its estimate
        sds = (
            r.cells.filter(counts)
            .select(*cols, "noise_sd")
            .join(ref.cells.filter(counts).select(*cols, "noise_sd"), on=cols)
        )
        assert sds.height and (sds["noise_sd"] - sds["noise_sd_right"]).abs().max() < 1e-9  # the same noise scales
    with pytest.raises(ValueError, match="requested twice"):
        draw_releases(con, [("tiny", PERIOD), ("tiny", PERIOD)], POLICY)


def test_measure_batch_refuses_plans_it_cannot_account_like_single_releases():
    con = make_tiny()
    _add_customer(con, "tiny2")
    fa, pa = _prepare(con, "tiny")
    fb, pb = _prepare(con, "tiny2", policy=tiny_policy())  # other tables this month: other queries
    with pytest.raises(ValueError, match="other queries or noise scales"):
        measure_batch({"tiny": fa, "tiny2": fb}, {"tiny": pa, "tiny2": pb})
    few = replace(pa, queries=tuple(
        replace(q, accounted_groups=q.accounted_groups - 1, keys=q.keys.head(q.accounted_groups - 1))
        if q.part == "usage" else q for q in pa.queries))  # fmt: skip
    with pytest.raises(ValueError, match="draw it on its own"):
        measure_batch({"tiny": fa, "tiny2": fa}, {"tiny": few, "tiny2": few})


def test_draw_releases_prepares_on_cursors_and_restores_the_thread_setting():
    con = make_tiny()
    _add_customer(con, "tiny2")
    _add_customer(con, "tiny3")
    con.execute("SET threads = 3")
    out = draw_releases(con, [("tiny3", PERIOD), ("tiny", PERIOD), ("tiny2", PERIOD)], POLICY)
    assert [r.customer_id for r in out] == ["tiny3", "tiny", "tiny2"]  # the order of the requests
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 3
    # each customer's draw has its own public structure (prepared on whichever cursor)
    for r in out:
        assert (r.public_headcount["customer_id"] == r.customer_id).all()
        assert r.cells.filter((pl.col("dimension") == "total") & (pl.col("metric") == "engaged_employees")).height == 1


def test_a_measurement_beyond_the_public_row_bound_is_refused(monkeypatch):
    """The margins claim at most MAX_LENGTH rows (OpenDP's overflow reasoning): more is refused, nothing drawn."""
    from privacy import measure as measure_mod

    con = make_tiny()
    frame, plan = _prepare(con, "tiny")
    monkeypatch.setattr(measure_mod, "MAX_LENGTH", 10)
    with pytest.raises(ValueError, match="reduced rows in one measurement"):
        measure(frame, plan)


def test_a_usage_bound_above_the_number_of_keys_is_truncated_at_the_keys_and_stays_batchable():
    """Topics released quarterly, up to 8 services per employee: 5 service keys, so 5 rows and 5 cells at most."""
    from privacy.contract import SERVICES

    policy = tiny_policy(**{"granularity.services": "month", "max_services_per_period": "8"})
    con = make_tiny()
    _add_customer(con, "tiny2")
    (fa, pa), (fb, pb) = _prepare(con, "tiny", policy), _prepare(con, "tiny2", policy)
    usage = next(q for q in pa.queries if q.part == "usage")
    assert usage.keys.height == len(SERVICES) == usage.groups == usage.accounted_groups == 5 and usage.batchable
    batch = measure_batch({"tiny": fa, "tiny2": fb}, {"tiny": pa, "tiny2": pb})
    single = measure(fa, pa)
    assert batch.query_losses == pytest.approx(single.query_losses, rel=1e-9)  # the same cost, in a batch


# ---------------------------------------------------------------- many periods of one customer (issue 12)
def _multi_month_con():
    """Two customers, three months each (the same people return), two headcount snapshots for one."""
    from privacy_synth import events_for_month, org, raw_connection

    con = raw_connection()
    hc = org(n_departments=10, employees=3_000, seed=1)
    insert_headcount(con, "acme", hc, as_of=date(2025, 1, 1))
    insert_headcount(con, "acme", hc.with_columns(pl.col("headcount") // 2), as_of=date(2025, 3, 1))  # smaller in March
    insert_headcount(con, "globex", hc, as_of=date(2025, 1, 1))
    for customer in ("acme", "globex"):
        for month in (1, 2, 3, 4):
            insert_events(con, events_for_month(customer, hc, 2025, month, seed=month + 10 * len(customer)))
    return con


def test_reduce_periods_equals_reduce_period_for_each_period():
    """One pass over a customer's events gives, per period, exactly the single-period reduction."""
    from privacy.reduce import PeriodRequest, reduce_periods

    con = _multi_month_con()
    policy = tiny_policy()
    periods = ["2025-01", "2025-02", "2025-03", "2025-Q1"]  # a quarter overlaps its months
    requests, expected = [], {}
    for label in periods:
        p = parse_period(label)
        s = load_structure(con, "acme", label, policy.k)
        plan = plan_release(policy, label, s)
        with_s, with_t = "services" in plan.tables, "topics" in plan.tables
        requests.append(PeriodRequest(p, plan.bounds, s.key_map, with_s, with_t))
        expected[label] = reduce_period(
            con, "acme", p, plan.bounds, s.key_map, with_services=with_s, with_topics=with_t
        )
    got = reduce_periods(con, "acme", requests)
    assert list(got) == periods
    assert {r.with_topics for r in requests} == {True, False}  # monthly releases without topics, the quarter with them
    for label in periods:
        for part in ("people", "usage"):
            a, b = getattr(got[label], part), getattr(expected[label], part)
            keys = ["employee"] if part == "people" else ["employee", "dimension", "group_value"]
            assert a.schema == b.schema, (label, part)
            assert a.sort(keys).equals(b.sort(keys)), (label, part)
    assert got["2025-Q1"].usage.height > 0 and got["2025-03"].people.height > 0
    with pytest.raises(ValueError, match="twice"):
        reduce_periods(con, "acme", [requests[0], requests[0]])


def test_load_structures_equals_load_structure_per_period():
    from privacy.structure import StructureError, load_structures

    con = _multi_month_con()
    periods = ["2024-12", "2025-01", "2025-02", "2025-03", "2025-Q1", "2025-04"]
    got = load_structures(con, "acme", periods, 5)
    for label in periods:
        ref = load_structure(con, "acme", label, 5)
        assert got[label].as_of == ref.as_of, label
        assert got[label].key_map.equals(ref.key_map) and got[label].public_headcount.equals(ref.public_headcount)
    assert got["2025-02"] is got["2025-01"]  # one roll-up per snapshot
    assert got["2025-03"].as_of == date(2025, 3, 1) and got["2024-12"].as_of == date(2025, 1, 1)
    with pytest.raises(StructureError):
        load_structures(con, "nobody", ["2025-01"], 5)


def test_draw_releases_measures_a_customers_periods_together_with_the_single_release_cost(monkeypatch):
    """Several months of one customer in one OpenDP measurement: the identifier is (customer, period,
    employee), OpenDP's own map for one identifier is one release's cost, and every draw equals its single draw."""
    import privacy.measure as measure_mod

    con = _multi_month_con()
    policy = tiny_policy()
    seen = []
    real = measure_mod.measure_batch

    def recording(frames, plans):
        out = real(frames, plans)
        seen.append((sorted(frames), out))
        return out

    monkeypatch.setattr(measure_mod, "measure_batch", recording)
    requests = [
        ("acme", "2025-01"),
        ("globex", "2025-02"),
        ("acme", "2025-02"),
        ("acme", "2025-Q1"),
        ("globex", "2025-01"),
    ]
    out = draw_releases(con, requests, policy)
    assert [(r.customer_id, r.period) for r in out] == requests
    units = [u for keys, _ in seen for u in keys]
    assert len(units) == len(set(units)) == 4  # the four months in batches; the lone quarter drawn alone
    assert {u.split("\x1f")[1] for u in units} == {"2025-01", "2025-02"}
    for keys, measured in seen:
        cost = release_cost(policy, keys[0].split("\x1f")[1]).rho
        assert len(keys) >= 2
        # OpenDP's privacy map for ONE identifier (one employee of one customer-month) = one release's cost
        assert measured.compositor_loss == pytest.approx(cost, rel=1e-12)
        assert sum(measured.query_losses) == pytest.approx(cost, rel=1e-6)
    # the same person in two months of one customer is two identifiers: acme's months are measured apart
    acme_people = [measured.noisy.filter(pl.col("customer_id").str.starts_with("acme")) for _, measured in seen]
    assert sum(f["customer_id"].n_unique() for f in acme_people) == 2
    for r in out:
        ref = draw_release(con, r.customer_id, r.period, policy)
        assert r.cost == ref.cost and r.public_headcount.equals(ref.public_headcount)
        assert (r.cells["customer_id"] == r.customer_id).all() and (r.cells["period"] == r.period).all()
        cols = ["dimension", "group_value", "metric"]
        assert r.cells.select(cols).equals(ref.cells.select(cols))
        counts = pl.col("metric").is_in(["engaged_employees", "contacts"])
        sds = (
            r.cells.filter(counts)
            .select(*cols, "noise_sd")
            .join(ref.cells.filter(counts).select(*cols, "noise_sd"), on=cols)
        )
        assert sds.height and (sds["noise_sd"] - sds["noise_sd_right"]).abs().max() < 1e-9


def test_batched_periods_of_one_customer_are_noiselessly_their_own_aggregates():
    """Noiseless: each month's cells in a multi-month batch are exactly that month's values alone."""
    con = _multi_month_con()
    policy = noiseless(tiny_policy())
    out = draw_releases(con, [("acme", "2025-01"), ("acme", "2025-02"), ("acme", "2025-04")], policy)
    for r in out:
        ref = draw_release(con, r.customer_id, r.period, policy)
        cols = ["dimension", "group_value", "metric", "value"]
        assert r.cells.select(cols).equals(ref.cells.select(cols)), r.period


def test_prepared_releases_are_checked_against_the_request_and_used_once():
    from privacy.release import prepare_releases

    con = _multi_month_con()
    policy = noiseless(tiny_policy())
    ready = prepare_releases(con, "acme", ["2025-01", "2025-02"], policy)
    out = draw_releases(con, [("acme", "2025-01"), ("acme", "2025-02")], policy, prepared=[ready])
    ref = draw_releases(con, [("acme", "2025-01"), ("acme", "2025-02")], policy)
    cols = ["dimension", "group_value", "metric", "value"]
    assert all(a.cells.select(cols).equals(b.cells.select(cols)) for a, b in zip(out, ref))
    with pytest.raises(ValueError, match="drawn already"):  # its frames were consumed: never measured twice
        draw_releases(con, [("acme", "2025-01"), ("acme", "2025-02")], policy, prepared=[ready])
    other = prepare_releases(con, "acme", ["2025-01"], policy)
    with pytest.raises(ValueError, match="do not match"):
        draw_releases(con, [("acme", "2025-01"), ("acme", "2025-02")], policy, prepared=[other])
    with pytest.raises(ValueError, match="not requested"):
        draw_releases(con, [("globex", "2025-01")], policy, prepared=[other])
