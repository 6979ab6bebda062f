"""Helpers for ingest tests: contract-valid rows and writers for the three delivery formats."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.raw_store import connect_raw
from pipeline.settings import Settings

Row = dict[str, Any]


def event(i: int, **overrides: Any) -> Row:
    """One valid event row; every value is a distinctive string so leaks are easy to spot."""
    row: Row = {
        "event_id": f"EVT-{i:06d}",
        "client_ref": f"CLIENTREF-{i % 7:04d}-SECRET",
        "customer_id": "acme",
        "site": "SITE-LEEDS",
        "department": "DEPT-FINANCE",
        "role": "ROLE-ANALYST",
        "service": "one_to_one",
        "occurred_on": f"2025-03-{1 + i % 28:02d}",
        "duration_min": "50",
        "who5_raw": "12",
        "satisfaction": "4",
        "topic": "stress",
    }
    row.update(overrides)
    return row


def events(n: int, start: int = 0) -> list[Row]:
    return [event(i) for i in range(start, start + n)]


def headcount_row(**overrides: Any) -> Row:
    row: Row = {"customer_id": "acme", "site": "SITE-LEEDS", "department": "DEPT-FINANCE", "role": "",
                "headcount": "40", "as_of": "2025-03"}  # fmt: skip
    row.update(overrides)
    return row


def write_csv(path: Path, rows: list[Row], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return path


def write_jsonl(path: Path, rows: list[Row]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[Row], schema: dict[str, Any] | None = None) -> Path:
    frame = pl.DataFrame(rows, schema=schema, orient="row") if schema else pl.DataFrame(rows)
    frame.write_parquet(path)
    return path


WRITERS: dict[str, Callable[[Path, list[Row]], Path]] = {
    "csv": lambda p, rows: write_csv(p.with_suffix(".csv"), rows),
    "parquet": lambda p, rows: write_parquet(p.with_suffix(".parquet"), rows),
    "jsonl": lambda p, rows: write_jsonl(p.with_suffix(".jsonl"), rows),
}


def query(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run a read query on the raw store with a short-lived connection."""
    con = connect_raw(settings)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def store_snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Full, ordered content of every raw table (to compare before/after)."""
    con: duckdb.DuckDBPyConnection = connect_raw(settings)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("deliveries", "pseudonyms", "events", "quarantine", "headcount", "store_meta")
        }
    finally:
        con.close()


# The public structure the default rows use: events are checked against the customer's headcount.
SEED_STRUCTURE: list[tuple[str, str, str, str | None]] = [
    ("acme", "SITE-LEEDS", "DEPT-FINANCE", "ROLE-ANALYST"),
]


def seed_headcount(settings: Settings, groups: list[tuple[str, str, str, str | None]] | None = None) -> None:
    """Store a headcount structure directly in each customer's shard (created when missing;
    as_of 2000-01, delivery 0: no deliveries row, no file)."""
    from pipeline.shards import catalog_connection, record_first_snapshot, shard_connection

    rows = groups or SEED_STRUCTURE
    for name in dict.fromkeys(r[0] for r in rows):
        with shard_connection(settings, name, create=True) as con:
            for customer, site, department, role in rows:
                if customer == name:
                    con.execute(
                        "INSERT INTO headcount VALUES (?, ?, ?, ?, 40, DATE '2000-01-01', 0)",
                        [customer, site, department, role],
                    )
        with catalog_connection(settings) as cat:
            record_first_snapshot(cat, name, "2000-01-01")
