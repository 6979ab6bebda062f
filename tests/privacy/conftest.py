"""Fixtures for the privacy library: raw tables in in-memory DuckDB (schema of the raw store)."""

from __future__ import annotations

import pytest
from privacy_synth import events_for_month, insert_events, insert_headcount, make_tiny, org, raw_connection


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
