"""Public keys (roll-up on public headcount only) and the per-employee reduction's bounds."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from privacy_synth import TINY_HEADCOUNT, employee_id, insert_headcount, make_tiny, raw_connection, tiny_employee

from privacy.periods import parse_period
from privacy.policy import DEFAULT_POLICY
from privacy.reduce import METRICS, Bounds, reduce_period
from privacy.structure import SMALL_TEAMS, StructureError, build_structure, load_structure, small_teams_label


def _keys(structure, dim):
    return dict(
        structure.public_headcount.filter(pl.col("dimension") == dim).select("group_value", "headcount").iter_rows()
    )


def test_small_groups_are_rolled_up_on_public_headcount():
    rows = pl.DataFrame(
        [
            ("A", "Big", "staff", 50),
            ("A", "Mini1", "staff", 4),
            ("A", "Mini2", "staff", 7),
            ("B", "Solo", "staff", 3),
            ("B", "Other", "manager", 30),
            ("C", "Lonely", None, 2),
        ],
        schema=["site", "department", "role", "headcount"],
        orient="row",
    )
    s = build_structure(rows, 10, "c", date(2025, 1, 1))
    # Mini1 + Mini2 = 11 >= 10 at site A; Solo (3) and Lonely (2) are still < 10 together: totals only
    assert _keys(s, "department") == {"Big": 50, "Other": 30, small_teams_label("A"): 11}
    mapping = {r["source"]: r["group_value"] for r in s.key_map.filter(pl.col("dimension") == "department").to_dicts()}
    assert mapping["Mini1"] == mapping["Mini2"] == "[Small teams, site A]"
    assert mapping["Solo"] is None and mapping["Lonely"] is None
    assert _keys(s, "site") == {"A": 61, "B": 33}  # C (2) is too small, even as "[Small sites]"
    assert _keys(s, "role") == {"staff": 64, "manager": 30}  # null roles are not a key
    assert _keys(s, "total") == {"all": 96}
    # with a lower k the organisation-wide small-teams group forms
    s5 = build_structure(rows, 5, "c", date(2025, 1, 1))
    assert _keys(s5, "department")[SMALL_TEAMS] == 9  # Mini1 (4), Solo (3), Lonely (2): each < 5 per site
    assert all(n >= 5 for n in s5.public_headcount["headcount"])


def test_latest_headcount_snapshot_on_or_before_the_period():
    con = raw_connection()
    insert_headcount(con, "c", TINY_HEADCOUNT, as_of=date(2025, 1, 1))
    insert_headcount(con, "c", TINY_HEADCOUNT.with_columns(pl.col("headcount") * 2), as_of=date(2025, 6, 1))
    assert load_structure(con, "c", "2025-03", 10).as_of == date(2025, 1, 1)
    assert load_structure(con, "c", "2025-Q2", 10).as_of == date(2025, 6, 1)
    assert load_structure(con, "c", "2024-11", 10).as_of == date(2025, 1, 1)  # earliest when none before
    with pytest.raises(StructureError, match="no headcount file"):
        load_structure(con, "unknown", "2025-03", 10)


def test_reduction_bounds_each_employee_and_never_imputes_scores():
    heavy = [
        dict(
            event_id=f"h-{j}",
            customer_id="tiny",
            employee="heavy",
            site="A" if j % 5 else "B",
            department="Ops" if j % 5 else "Legal",
            role="staff",
            service=["one_to_one", "app", "group", "webinar", "crisis_support"][j % 5],
            occurred_on=date(2025, 3, 1 + j % 28),
            duration_min=30,
            who5_raw=25 if j == 59 else 6 if j == 3 else None,
            satisfaction=None,
            topic=["stress", "burnout", "anxiety", "other"][j % 4],
        )
        for j in range(60)
    ]
    con = make_tiny(heavy)
    period = parse_period("2025-03")
    s = load_structure(con, "tiny", "2025-03", 10)
    bounds = Bounds.for_period(DEFAULT_POLICY, period)
    red = reduce_period(con, "tiny", period, bounds, s.key_map)
    me = red.people.filter(pl.col("employee") == employee_id("heavy"))
    # one people row: the home (Ops: the most frequent department, site A, role staff) as public keys
    assert me.height == 1
    assert me.select("department", "site", "role").row(0) == ("Ops", "A", "staff")
    assert me["contacts"].item() == DEFAULT_POLICY.max_contacts_per_month
    # WHO-5: first score 6 (24 on 0-100, on 4 March), latest 25 (100): centred 100 - 50, not low, improved
    assert (me["has_who5"].item(), me["who5_c"].item(), me["low_pm"].item()) == (1, 50, -1)
    assert (me["has_chg"].item(), me["imp_pm"].item()) == (1, 1)
    assert (me["sat_c"].item(), me["has_sat"].item()) == (0, 0)  # no rating: 0 and indicator 0, never a midpoint
    mine = red.usage.filter(pl.col("employee") == employee_id("heavy"))
    assert mine.filter(pl.col("dimension") == "service").height == DEFAULT_POLICY.max_services_per_period
    assert mine.filter(pl.col("dimension") == "topic").height == DEFAULT_POLICY.max_topics_per_period
    assert set(mine.filter(pl.col("dimension") == "service")["group_value"]) <= {
        "one_to_one",
        "app",
        "group",
        "webinar",
        "crisis_support",
    }
    # every employee: one people row, no nulls in measured columns, values within bounds
    assert red.people["employee"].is_unique().all()
    assert red.people.select(METRICS).null_count().sum_horizontal().item() == 0
    assert red.usage.null_count().sum_horizontal().item() == 0
    assert red.usage.select("employee", "dimension", "group_value").is_unique().all()
    for column, (lo, hi) in bounds.column_bounds().items():
        assert red.people[column].min() >= lo and red.people[column].max() <= hi, column
    # the derived columns are 0 exactly where their indicator is
    no_score = red.people.filter(pl.col("has_who5") == 0)
    assert (no_score["who5_c"] == 0).all() and (no_score["low_pm"] == 0).all() and (no_score["has_chg"] == 0).all()
    assert (red.people.filter(pl.col("has_chg") == 0)["imp_pm"] == 0).all()
    assert (red.people.filter(pl.col("has_sat") == 0)["sat_c"] == 0).all()
    # null scores stay absent: only even-numbered tiny employees have a WHO-5 score
    assert red.people["has_who5"].sum() == sum((n + 1) // 2 for n in (25, 15, 5, 2, 3)) + 1
    # tiny employee i scores 10 + j at its j-th contact (i % 4 + 1 contacts, even i only): latest 10 + i % 4
    ops = red.people.filter(pl.col("employee").is_in([tiny_employee("Ops", i) for i in range(0, 25, 2)]))
    want_c = [4 * (10 + i % 4) - 50 for i in range(0, 25, 2)]
    assert sorted(ops["who5_c"].to_list()) == sorted(want_c)
    assert (ops["low_pm"] == 1).all()  # even i: latest 10 or 12 raw (40 or 48), below the cut-off of 50

    # the reduction is a function of each employee's own records: it does not depend on the others
    alone = raw_connection()
    insert_headcount(alone, "tiny", TINY_HEADCOUNT, as_of=date(2025, 1, 1))
    from privacy_synth import insert_events

    insert_events(alone, pl.DataFrame(heavy, schema_overrides={"who5_raw": pl.Int8, "satisfaction": pl.Int8}))
    red_alone = reduce_period(alone, "tiny", period, bounds, s.key_map)
    assert red_alone.people.equals(me)
    assert red_alone.usage.sort(red_alone.usage.columns).equals(mine.sort(mine.columns))


def test_departments_outside_the_headcount_count_in_totals_only(tiny_con):
    s = load_structure(tiny_con, "tiny", "2025-03", 10)
    red = reduce_period(
        tiny_con, "tiny", parse_period("2025-03"), Bounds.for_period(DEFAULT_POLICY, parse_period("2025-03")), s.key_map
    )
    ghosts = [tiny_employee("Ghost", i) for i in range(3)]
    ghost = red.people.filter(pl.col("employee").is_in(ghosts))
    assert ghost.height == 3
    # department 'Ghost' is not in the headcount: no public key (NULL), so it counts in the total only;
    # site B and the role are public
    assert ghost["department"].null_count() == 3
    assert (ghost["site"] == "B").all() and ghost["role"].null_count() == 0
    assert "Ghost" not in red.people["department"].to_list()
    cells = red.cells()
    assert set(cells.filter(pl.col("employee").is_in(ghosts) & (pl.col("part") == "people"))["dimension"]) == {
        "total",
        "site",
        "role",
    }
