"""Duplicates and replacements: deliveries never double count; the last delivery of an event_id wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import WRITERS, event, events, headcount_row, query, seed_headcount, store_snapshot, write_csv

from pipeline.ingest import ingest_files
from pipeline.settings import Settings
from pipeline.shards import shard_connection


def test_same_file_twice_counts_once(settings: Settings, drop: Path) -> None:
    path = write_csv(drop / "d.csv", events(10))
    first, _ = ingest_files(settings, [path])
    second, _ = ingest_files(settings, [path])
    assert (first[0].accepted, first[0].duplicate) == (10, 0)
    assert (second[0].accepted, second[0].duplicate, second[0].replaced) == (0, 10, 0)
    assert query(settings, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(10, 10)]
    assert query(settings, "SELECT DISTINCT delivery_id FROM events") == [(1,)]


def test_duplicate_within_file_last_occurrence_wins(settings: Settings, drop: Path) -> None:
    rows = events(3) + [event(1, who5_raw="20"), event(1, who5_raw="21")]
    reports, _ = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert (reports[0].rows_total, reports[0].accepted, reports[0].duplicate) == (5, 3, 2)
    assert query(settings, "SELECT who5_raw FROM events WHERE event_id = 'EVT-000001'") == [(21,)]


def test_invalid_last_occurrence_does_not_remove_the_valid_one(settings: Settings, drop: Path) -> None:
    rows = [event(1, who5_raw="20"), event(1, who5_raw="77")]
    reports, _ = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert (reports[0].accepted, reports[0].quarantined, reports[0].duplicate) == (1, 1, 0)
    assert query(settings, "SELECT who5_raw FROM events") == [(20,)]


def test_later_delivery_replaces_event(settings: Settings, drop: Path) -> None:
    ingest_files(settings, [write_csv(drop / "a.csv", events(3))])
    reports, _ = ingest_files(settings, [write_csv(drop / "b.csv", [event(1, satisfaction="1", topic="burnout")])])
    assert (reports[0].accepted, reports[0].replaced, reports[0].duplicate) == (1, 1, 0)
    assert query(settings, "SELECT satisfaction, topic, delivery_id FROM events WHERE event_id = 'EVT-000001'") == [
        (1, "burnout", 2)
    ]
    assert query(settings, "SELECT count(*) FROM events") == [(3,)]


def test_overlapping_deliveries(settings: Settings, drop: Path) -> None:
    ingest_files(settings, [write_csv(drop / "a.csv", events(4))])  # EVT 0..3
    second = events(4, start=2)  # EVT 2..5
    second[1] = event(3, duration_min="15")  # EVT 3 changed, EVT 2 identical
    reports, _ = ingest_files(settings, [write_csv(drop / "b.csv", second)])
    r = reports[0]
    assert (r.rows_total, r.accepted, r.duplicate, r.replaced) == (4, 3, 1, 1)
    assert query(settings, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(6, 6)]
    assert query(settings, "SELECT event_id, delivery_id, duration_min FROM events ORDER BY 1") == [
        ("EVT-000000", 1, 50), ("EVT-000001", 1, 50), ("EVT-000002", 1, 50),
        ("EVT-000003", 2, 15), ("EVT-000004", 2, 50), ("EVT-000005", 2, 50),
    ]  # fmt: skip


def test_same_rows_in_every_format_store_the_same_events(settings: Settings, drop: Path) -> None:
    contents = []
    for fmt in ("csv", "parquet", "jsonl"):
        with shard_connection(settings, "acme") as con:
            con.execute("DELETE FROM events")
        reports, refused = ingest_files(settings, [WRITERS[fmt](drop / f"d_{fmt}", events(6))])
        assert refused == [] and reports[0].accepted == 6, fmt
        contents.append(query(settings, "SELECT * EXCLUDE (delivery_id, ingested_at) FROM events ORDER BY event_id"))
    assert contents[0] == contents[1] == contents[2]


@pytest.mark.no_seed
def test_headcount_delivery_replaces_structure_for_its_month(settings: Settings, drop: Path) -> None:
    march = [headcount_row(department=d, headcount="10") for d in ("A", "B", "C")]
    april = [headcount_row(department="A", as_of="2025-04")]
    other = [headcount_row(customer_id="globex", department="A")]
    ingest_files(settings, [write_csv(drop / "hc1.csv", march + april + other)])
    new_march = [headcount_row(department="A", headcount="12"), headcount_row(department="D", headcount="30")]
    reports, _ = ingest_files(settings, [write_csv(drop / "hc2.csv", new_march)])
    assert (reports[0].accepted, reports[0].replaced, reports[0].customers) == (2, 3, ("acme",))
    assert query(
        settings, "SELECT customer_id, as_of::VARCHAR, department, headcount FROM headcount ORDER BY ALL"
    ) == [
        ("acme", "2025-03-01", "A", 12), ("acme", "2025-03-01", "D", 30),
        ("acme", "2025-04-01", "A", 40), ("globex", "2025-03-01", "A", 40),
    ]  # fmt: skip


@pytest.mark.no_seed
def test_headcount_duplicate_group_last_wins(settings: Settings, drop: Path) -> None:
    rows = [headcount_row(headcount="5"), headcount_row(headcount="7")]
    reports, _ = ingest_files(settings, [write_csv(drop / "hc.csv", rows)])
    assert (reports[0].accepted, reports[0].duplicate) == (1, 1)
    assert query(settings, "SELECT headcount FROM headcount") == [(7,)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_report_lists_customers_and_delivery_row(settings: Settings, drop: Path, fmt: str) -> None:
    rows = events(3) + [event(9, customer_id="globex")]
    seed_headcount(settings, [("globex", "SITE-LEEDS", "DEPT-FINANCE", "ROLE-ANALYST")])
    reports, _ = ingest_files(settings, [WRITERS[fmt](drop / "d", rows)])
    assert reports[0].customers == ("acme", "globex")
    snap = store_snapshot(settings)
    (delivery,) = snap["deliveries"]
    assert delivery[1:2] == (f"d.{fmt}",) and delivery[3:10] == ("events", fmt, 4, 4, 0, 0, 0)


def test_employee_ids_are_stable_across_deliveries_and_ordered_by_pseudonym(settings: Settings, drop: Path) -> None:
    """The same client_ref gets the same surrogate id in every delivery; new people get max + 1, ..."""
    ingest_files(settings, [write_csv(drop / "a.csv", events(10))])  # 7 people
    first = dict(query(settings, "SELECT employee, pseudonym FROM pseudonyms"))
    assert sorted(first) == list(range(1, 8))
    later = [event(i, client_ref=f"CLIENTREF-{i % 7:04d}-SECRET") for i in range(100, 110)]
    later += [event(i, client_ref=f"NEWCOMER-{i % 5}") for i in range(200, 210)]  # 5 new people
    reports, _ = ingest_files(settings, [write_csv(drop / "b.csv", later)])
    assert reports[0].accepted == 20
    stored = dict(query(settings, "SELECT employee, pseudonym FROM pseudonyms"))
    assert {k: stored[k] for k in first} == first  # nobody's id or pseudonym changed
    assert sorted(stored) == list(range(1, 13))
    assert len(set(stored.values())) == 12
    by_event = dict(query(settings, "SELECT event_id, employee FROM events"))
    for i in range(100, 110):  # same client_ref as EVT-(i % 7) of the first delivery -> same id
        assert by_event[f"EVT-{i:06d}"] == by_event[f"EVT-{i % 7:06d}"]
    assert {by_event[f"EVT-{i:06d}"] for i in range(200, 210)} == set(range(8, 13))
    # within each delivery, new ids follow the (keyed-random) pseudonym order, not the file's order
    for ids in (range(1, 8), range(8, 13)):
        assert [stored[i] for i in ids] == sorted(stored[i] for i in ids)
