"""Raw store schema v1 (hex pseudonym on every event) is migrated to v2 (surrogate id + pseudonyms) on open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from ingest_helpers import event, query, seed_headcount, write_csv

import pipeline.raw_store as raw_store
from pipeline.ingest import ingest_files
from pipeline.keys import PSEUDONYM_KEY_ENV
from pipeline.raw_store import RAW_SCHEMA_VERSION, RawStoreError, connect_legacy, connect_raw, load_httpfs, raw_key
from pipeline.settings import Settings
from privacy.pseudonymise import key_check, pseudonym

PSEUDONYM_KEY = "m" * 40
pytestmark = pytest.mark.no_seed  # each test builds a v1 store itself

# The raw store DDL as released with schema version 1 (events.employee held the hex HMAC).
V1_DDL = """
CREATE TABLE deliveries (
    delivery_id BIGINT PRIMARY KEY, file_name VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, file_format VARCHAR NOT NULL, rows_total BIGINT NOT NULL,
    rows_accepted BIGINT NOT NULL, rows_quarantined BIGINT NOT NULL, rows_duplicate BIGINT NOT NULL,
    rows_replaced BIGINT NOT NULL, ingested_at TIMESTAMP NOT NULL);
CREATE TABLE events (
    event_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, employee VARCHAR NOT NULL, site VARCHAR,
    department VARCHAR NOT NULL, role VARCHAR, service VARCHAR NOT NULL, occurred_on DATE NOT NULL,
    duration_min SMALLINT, who5_raw TINYINT, satisfaction TINYINT, topic VARCHAR,
    delivery_id BIGINT NOT NULL, ingested_at TIMESTAMP NOT NULL);
CREATE TABLE quarantine (
    delivery_id BIGINT NOT NULL, file_name VARCHAR NOT NULL, row_number BIGINT NOT NULL, column_name VARCHAR,
    reason VARCHAR NOT NULL, quarantined_at TIMESTAMP NOT NULL);
CREATE TABLE headcount (
    customer_id VARCHAR NOT NULL, site VARCHAR NOT NULL, department VARCHAR NOT NULL, role VARCHAR,
    headcount INTEGER NOT NULL, as_of DATE NOT NULL, delivery_id BIGINT NOT NULL);
CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
"""
OTHER_TABLES = ("deliveries", "quarantine", "headcount")
EVENTS_AS_V1 = (
    "SELECT e.event_id, e.customer_id, p.pseudonym, e.site, e.department, e.role, e.service, e.occurred_on, "
    "e.duration_min, e.who5_raw, e.satisfaction, e.topic, e.delivery_id, e.ingested_at "
    "FROM events e JOIN pseudonyms p USING (employee) ORDER BY ALL"
)


@pytest.fixture
def v1_store(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A v1 store written with the v1 DDL: 300 events of 40 people over 3 deliveries, plus the other tables."""
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, PSEUDONYM_KEY)
    settings.ensure_dirs()
    con = duckdb.connect()
    load_httpfs(con)
    con.execute(f"ATTACH '{settings.raw_path}' AS raw (ENCRYPTION_KEY $k)", {"k": raw_key(settings, create=True)})
    con.execute("USE raw")
    con.execute(V1_DDL)
    con.execute("INSERT INTO store_meta VALUES ('schema_version', '1'), ('pseudonym_key_check', ?)",
                [key_check(PSEUDONYM_KEY.encode())])  # fmt: skip
    key = PSEUDONYM_KEY.encode()
    for d in (1, 2, 3):
        con.execute("INSERT INTO deliveries VALUES (?, ?, 'f' || ?, 'events', 'csv', 100, 100, 1, 0, 0, TIMESTAMP '2025-04-01')",
                    [d, f"d{d}.csv", d])  # fmt: skip
        con.execute("INSERT INTO quarantine VALUES (?, ?, 7, 'who5_raw', 'who5_raw out of range 0-25', TIMESTAMP '2025-04-01')",
                    [d, f"d{d}.csv"])  # fmt: skip
    rows = [
        (f"EVT-{i:06d}", "acme", pseudonym(key, f"CLIENT-{i % 40:03d}"), "SITE-A", f"DEPT-{i % 3}", None,
         "one_to_one", f"2025-03-{1 + i % 28:02d}", 50, i % 26, None, "stress", 1 + i // 100, "2025-04-01 00:00:00")
        for i in range(300)
    ]  # fmt: skip
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("INSERT INTO headcount VALUES ('acme', 'SITE-A', 'DEPT-0', NULL, 40, '2025-03-01', 3)")
    snapshot = {
        "events": con.execute("SELECT * FROM events ORDER BY ALL").fetchall(),
        **{t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in OTHER_TABLES},
    }
    con.close()
    return snapshot


def _version_and_type(settings: Settings) -> tuple[str, str]:
    con = connect_legacy(settings, read_only=True)
    try:
        (version,) = con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()  # type: ignore[misc]
        (kind,) = con.execute(
            "SELECT data_type FROM duckdb_columns() WHERE database_name = 'raw' AND table_name = 'events' "
            "AND column_name = 'employee'"
        ).fetchone()  # type: ignore[misc]
        return version, kind
    finally:
        con.close()


def test_v1_store_is_migrated_on_first_write_open(settings: Settings, v1_store: dict[str, Any]) -> None:
    assert _version_and_type(settings) == ("1", "VARCHAR")  # a read-only open changes nothing
    con = connect_raw(settings)
    try:
        assert con.execute(EVENTS_AS_V1).fetchall() == v1_store["events"]  # same events, same pseudonyms
        for table in OTHER_TABLES:
            assert con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == v1_store[table]
        people = con.execute("SELECT count(*), count(DISTINCT pseudonym), min(employee), max(employee) FROM pseudonyms")
        assert people.fetchone() == (40, 40, 1, 40)
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'raw'").fetchall()
        }
        assert "_events_v1" not in tables
    finally:
        con.close()
    assert not settings.raw_path.exists()  # moved into the customer's shard, then deleted


def test_ingest_after_migration_keeps_ids_stable(settings: Settings, drop: Path, v1_store: dict[str, Any]) -> None:
    rows = [event(1000, client_ref="CLIENT-007"), event(1001, client_ref="CLIENT-NEW")]
    seed_headcount(settings)  # after the migration: events are checked against the structure
    reports, refused = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert refused == [] and reports[0].accepted == 2
    ids = dict(query(settings, "SELECT event_id, employee FROM events"))
    assert ids["EVT-001000"] == ids["EVT-000007"]  # CLIENT-007 (event 7) kept its migrated id
    assert ids["EVT-001001"] == 41
    assert query(settings, "SELECT count(*) FROM events") == [(302,)]


def test_failed_migration_leaves_the_v1_store_unchanged(
    settings: Settings, v1_store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate = raw_store._migrate_v1_to_v2

    def crash_after_migrating(con: duckdb.DuckDBPyConnection) -> None:
        migrate(con)
        raise RuntimeError("simulated crash before COMMIT")

    monkeypatch.setattr(raw_store, "_migrate_v1_to_v2", crash_after_migrating)
    with pytest.raises(RuntimeError, match="simulated crash"):
        connect_legacy(settings)
    assert _version_and_type(settings) == ("1", "VARCHAR")
    con = connect_legacy(settings, read_only=True)
    try:
        assert con.execute("SELECT * FROM events ORDER BY ALL").fetchall() == v1_store["events"]
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'raw'").fetchall()
        }
        assert "pseudonyms" not in tables and "_events_v1" not in tables
    finally:
        con.close()
    monkeypatch.undo()
    connect_legacy(settings).close()  # and the next open migrates it
    assert _version_and_type(settings) == (str(RAW_SCHEMA_VERSION), "BIGINT")


def test_store_from_newer_code_is_refused(settings: Settings) -> None:
    connect_legacy(settings).close()
    con = connect_legacy(settings)
    con.execute("UPDATE store_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(RawStoreError, match="schema version 99 .* upgrade wellbeing"):
        connect_legacy(settings)
