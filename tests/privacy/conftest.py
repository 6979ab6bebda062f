"""Fixtures for the privacy library: raw tables in in-memory DuckDB (schema of the raw store)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from privacy_synth import events_for_month, insert_events, insert_headcount, org, raw_connection

TINY_HEADCOUNT = pl.DataFrame(
    [
        ("A", "Ops", "staff", 40),
        ("A", "Sales", "staff", 30),
        ("B", "Legal", "staff", 20),
        ("B", "Empty", "staff", 15),  # public, but nobody in it uses the service
        ("B", "Tiny", "staff", 3),  # < k: rolled up, still < k: totals only
    ],
    schema=["site", "department", "role", "headcount"],
    orient="row",
)
# department -> engaged employees in 2025-03 (site from the headcount)
TINY_ENGAGED = {"Ops": 25, "Sales": 15, "Legal": 5, "Tiny": 2, "Ghost": 3}
TINY_SITE = {"Ops": "A", "Sales": "A", "Legal": "B", "Tiny": "B", "Ghost": "B"}


def tiny_events(extra: list[dict] | None = None) -> pl.DataFrame:
    """Deterministic events: employee i of department D has (i % 4) + 1 contacts, scores on even i."""
    rows = []
    for dept, n in TINY_ENGAGED.items():
        for i in range(n):
            emp = f"{dept.lower()}-{i:03d}"
            for j in range(i % 4 + 1):
                rows.append(
                    dict(
                        event_id=f"{emp}-{j}",
                        customer_id="tiny",
                        employee=emp,
                        site=TINY_SITE[dept],
                        department=dept,
                        role="staff",
                        service=["one_to_one", "app", "group"][j % 3],
                        occurred_on=date(2025, 3, 1 + j),
                        duration_min=30,
                        who5_raw=(10 + j) if i % 2 == 0 else None,
                        satisfaction=(4 if j == 0 else None) if i % 3 == 0 else None,
                        topic="stress" if j % 2 == 0 else None,
                    )
                )
    rows.extend(extra or [])
    return pl.DataFrame(rows, schema_overrides={"who5_raw": pl.Int8, "satisfaction": pl.Int8})


def make_tiny(extra: list[dict] | None = None):
    con = raw_connection()
    insert_headcount(con, "tiny", TINY_HEADCOUNT, as_of=date(2025, 1, 1))
    insert_events(con, tiny_events(extra))
    return con


@pytest.fixture
def tiny_con():
    con = make_tiny()
    yield con
    con.close()


@pytest.fixture(scope="module")
def realistic_con():
    """One customer of ~20k employees, one month of ~20k events (the size of one benchmark release)."""
    con = raw_connection()
    hc = org()
    insert_headcount(con, "acme", hc)
    insert_events(con, events_for_month("acme", hc, 2025, 3, seed=7))
    yield con
    con.close()
