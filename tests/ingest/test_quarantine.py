"""Row-level rules: each bad row goes to quarantine with its row number, column and reason, never to events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from ingest_helpers import WRITERS, event, events, headcount_row, query, write_csv, write_parquet

from pipeline.ingest import ingest_files
from pipeline.settings import Settings

EVENT_CASES: list[tuple[str, Any, str]] = [
    ("event_id", "", "event_id is empty (required)"),
    ("client_ref", "", "client_ref is empty (required)"),
    ("client_ref", "   ", "client_ref is empty (required)"),
    ("customer_id", "", "customer_id is empty (required)"),
    ("department", " ", "department is empty (required)"),
    ("department", "", "department is empty (required)"),
    ("service", "", "service is empty (required)"),
    ("service", "massage", "service is not one of the allowed values"),
    ("topic", "gossip", "topic is not one of the allowed values"),
    ("occurred_on", "", "occurred_on is empty (required)"),
    ("occurred_on", "2025-13-01", "occurred_on is not an ISO date (YYYY-MM-DD)"),
    ("occurred_on", "05/03/2025", "occurred_on is not an ISO date (YYYY-MM-DD)"),
    ("occurred_on", "2025-03-05 10:00", "occurred_on is not an ISO date (YYYY-MM-DD)"),
    ("occurred_on", "2999-01-01", "occurred_on is in the future"),
    ("duration_min", "abc", "duration_min is not an integer"),
    ("duration_min", "12.5", "duration_min is not an integer"),
    ("duration_min", "1e2", "duration_min is not an integer"),
    ("duration_min", "050", "duration_min is not an integer"),
    ("duration_min", "481", "duration_min out of range 0-480"),
    ("duration_min", "-1", "duration_min out of range 0-480"),
    ("who5_raw", "26", "who5_raw out of range 0-25"),
    ("who5_raw", "99999999999999999999", "who5_raw is not an integer"),
    ("satisfaction", "0", "satisfaction out of range 1-5"),
    ("satisfaction", "6", "satisfaction out of range 1-5"),
    ("department", "D" * 81, "department longer than 80 characters"),
    ("site", "S" * 81, "site longer than 80 characters"),
]


def _quarantine(settings: Settings) -> list[tuple[Any, ...]]:
    return query(settings, "SELECT file_name, row_number, column_name, reason FROM quarantine ORDER BY ALL")


@pytest.mark.parametrize(("column", "value", "reason"), EVENT_CASES)
def test_event_rule_quarantines_the_row(settings: Settings, drop: Path, column: str, value: str, reason: str) -> None:
    rows = events(4)
    rows[2] = event(2, **{column: value})
    path = write_csv(drop / "delivery.csv", rows)
    reports, refused = ingest_files(settings, [path])
    assert refused == []
    report = reports[0]
    assert (report.rows_total, report.accepted, report.quarantined) == (4, 3, 1)
    entries = _quarantine(settings)
    assert len(entries) == 1
    file_name, row_number, column_name, stored_reason = entries[0]
    assert (file_name, row_number, column_name) == ("delivery.csv", 3, column)
    assert stored_reason.startswith(reason)
    if value.strip():
        assert value not in stored_reason  # the offending value is never stored
    assert query(settings, "SELECT count(*) FROM events WHERE event_id = 'EVT-000002'") == [(0,)]


def test_several_problems_in_one_row_are_all_listed_but_count_once(settings: Settings, drop: Path) -> None:
    rows = events(3)
    rows[0] = event(0, who5_raw="30", satisfaction="9", service="spa")
    reports, _ = ingest_files(settings, [write_csv(drop / "multi.csv", rows)])
    assert reports[0].quarantined == 1 and reports[0].accepted == 2
    assert [(r[1], r[2]) for r in _quarantine(settings)] == [(1, "satisfaction"), (1, "service"), (1, "who5_raw")]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_value_with_spaces_around_text_is_not_blank_but_breaks_the_character_rule(
    settings: Settings, drop: Path, fmt: str
) -> None:
    """The blank check short-circuits on a leading space; such a value is not a contract value either."""
    rows = [event(0, department="  DEPT-FINANCE"), event(1, customer_id=" acme "), event(2, department="\tx")]
    reports, _ = ingest_files(settings, [WRITERS[fmt](drop / "spaced", rows)])
    assert (reports[0].accepted, reports[0].quarantined) == (0, 3)
    reasons = [r[3] for r in _quarantine(settings)]
    assert all("characters outside the contract" in r for r in reasons) and not any("empty" in r for r in reasons)


def test_optional_fields_may_be_empty(settings: Settings, drop: Path) -> None:
    rows = [event(0, site="", role="", duration_min="", who5_raw="", satisfaction="", topic="")]
    reports, _ = ingest_files(settings, [write_csv(drop / "sparse.csv", rows)])
    assert reports[0].accepted == 1
    assert query(settings, "SELECT site, role, duration_min, who5_raw, satisfaction, topic FROM events") == [
        (None, None, None, None, None, None)
    ]


def test_typed_values_are_stored_typed(settings: Settings, drop: Path) -> None:
    rows = [event(0, who5_raw="0", duration_min="480", satisfaction="4.0")]  # "4.0": float-typed exports
    ingest_files(settings, [write_csv(drop / "one.csv", rows)])
    row = query(settings, "SELECT occurred_on::VARCHAR, duration_min, who5_raw, satisfaction FROM events")
    assert row == [("2025-03-01", 480, 0, 4)]


def test_parquet_float_and_out_of_range_numbers(settings: Settings, drop: Path) -> None:
    rows = events(4)
    frame = pl.DataFrame(rows).with_columns(
        pl.Series("who5_raw", [12.0, 3.5, 12.0, 12.0]),
        pl.Series("duration_min", [50, 50, 50, 100_000]),
    )
    path = drop / "typed.parquet"
    frame.write_parquet(path)
    reports, _ = ingest_files(settings, [path])
    assert reports[0].accepted == 2
    assert [(r[1], r[3]) for r in _quarantine(settings)] == [
        (2, "who5_raw is not an integer"),
        (4, "duration_min out of range 0-480"),
    ]


def test_parquet_native_types_accepted(settings: Settings, drop: Path) -> None:
    frame = pl.DataFrame(events(3)).with_columns(
        pl.col("occurred_on").str.to_date(), pl.col("who5_raw").cast(pl.Int8), pl.col("duration_min").cast(pl.Int64)
    )
    path = drop / "native.parquet"
    frame.write_parquet(path)
    reports, _ = ingest_files(settings, [path])
    assert reports[0].accepted == 3


def test_jsonl_numbers_and_bad_values(settings: Settings, drop: Path) -> None:
    rows: list[dict[str, Any]] = events(3)
    rows[0] = dict(rows[0], who5_raw=12, satisfaction=5, duration_min=30)
    rows[1] = dict(rows[1], satisfaction=4.5)
    rows[2] = dict(rows[2], occurred_on=None)
    reports, _ = ingest_files(settings, [WRITERS["jsonl"](drop / "d", rows)])
    assert reports[0].accepted == 1
    assert [(r[1], r[2]) for r in _quarantine(settings)] == [(2, "satisfaction"), (3, "occurred_on")]


def test_row_numbers_follow_file_order_in_large_files(settings: Settings, drop: Path) -> None:
    """DuckDB reads big files in parallel; row numbers must still be the data row numbers."""
    n = 300_000
    frame = (
        pl.DataFrame(event(0))
        .select(pl.all().repeat_by(n).explode())
        .with_columns((pl.lit("EVT-") + pl.int_range(n).cast(pl.Utf8)).alias("event_id"))
    )
    bad_rows = [7, 150_001, 299_999]  # 1-based
    frame = frame.with_columns(
        pl.when(pl.int_range(n).is_in([r - 1 for r in bad_rows]))
        .then(pl.lit("99"))
        .otherwise(pl.col("who5_raw"))
        .alias("who5_raw")
    )
    path = drop / "big.csv"
    frame.write_csv(path)
    reports, _ = ingest_files(settings, [path])
    assert reports[0].quarantined == 3
    assert [r[1] for r in _quarantine(settings)] == bad_rows


HEADCOUNT_CASES: list[tuple[str, str, str]] = [
    ("headcount", "-5", "headcount out of range"),
    ("headcount", "many", "headcount is not an integer"),
    ("as_of", "2025-13", "as_of is not a month"),
    ("as_of", "March 2025", "as_of is not a month"),
    ("department", "", "department is empty (required)"),
    ("site", "", "site is empty (required)"),
]


@pytest.mark.parametrize(("column", "value", "reason"), HEADCOUNT_CASES)
def test_headcount_rule_quarantines_the_row(
    settings: Settings, drop: Path, column: str, value: str, reason: str
) -> None:
    rows = [headcount_row(department=f"D{i}") for i in range(3)]
    rows[1] = dict(rows[1], **{column: value})
    reports, _ = ingest_files(settings, [write_csv(drop / "hc.csv", rows)])
    assert (reports[0].kind, reports[0].accepted, reports[0].quarantined) == ("headcount", 2, 1)
    entries = _quarantine(settings)
    assert [(r[1], r[2]) for r in entries] == [(2, column)] and entries[0][3].startswith(reason)


@pytest.mark.no_seed
def test_headcount_month_formats(settings: Settings, drop: Path) -> None:
    rows = [headcount_row(department="A", as_of="2025-03"), headcount_row(department="B", as_of="2025-04-17")]
    ingest_files(settings, [write_parquet(drop / "hc.parquet", rows)])
    assert query(settings, "SELECT department, as_of::VARCHAR, role FROM headcount ORDER BY 1") == [
        ("A", "2025-03-01", None),
        ("B", "2025-04-01", None),
    ]
