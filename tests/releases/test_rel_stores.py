"""Published store (schema, no identifiers, atomic swap), control store (no personal data), checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from release_helpers import CUSTOMERS, published

from pipeline.raw_store import raw_connection
from pipeline.releases.checks import check_ledger_within_cap, check_no_identifiers, check_thresholds
from pipeline.releases.lifecycle import run_release
from pipeline.releases.publish import identifier_columns
from pipeline.settings import Settings
from pipeline.shards import find_shard, shard_connection
from privacy.policy import DEFAULT_POLICY
from stores.control import (
    claim_pending_requests,
    control_connection,
    request_release,
    set_policy_value,
    update_request_status,
)

C = CUSTOMERS[0]

# docs/architecture.md, "Published store schema" (column names and types, in order)
EXPECTED_SCHEMA = {
    "releases": [
        ("release_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("period", "VARCHAR"),
        ("granularity", "VARCHAR"),
        ("version", "INTEGER"),
        ("created_at", "TIMESTAMP"),
        ("requested_by", "VARCHAR"),
        ("rho", "DOUBLE"),
        ("epsilon", "DOUBLE"),
        ("delta", "DOUBLE"),
        ("accounting", "VARCHAR"),
        ("policy_version", "INTEGER"),
        ("code_version", "VARCHAR"),
        ("k", "INTEGER"),
        ("k_scores", "INTEGER"),
        ("z", "DOUBLE"),
    ],
    "release_cells": [
        ("release_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("period", "VARCHAR"),
        ("dimension", "VARCHAR"),
        ("group_value", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("value", "DOUBLE"),
        ("ci_low", "DOUBLE"),
        ("ci_high", "DOUBLE"),
        ("suppressed", "BOOLEAN"),
        ("status", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("noise_sd", "DOUBLE"),
    ],
    "budget_ledger": [
        ("entry_id", "BIGINT"),
        ("customer_id", "VARCHAR"),
        ("period", "VARCHAR"),
        ("release_id", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("rho", "DOUBLE"),
        ("epsilon", "DOUBLE"),
        ("delta", "DOUBLE"),
        ("policy_version", "INTEGER"),
        ("created_at", "TIMESTAMP"),
        ("code_version", "VARCHAR"),
        ("requested_by", "VARCHAR"),
    ],
    "policy_history": [
        ("changed_at", "TIMESTAMP"),
        ("changed_by", "VARCHAR"),
        ("scope", "VARCHAR"),
        ("key", "VARCHAR"),
        ("old_value", "VARCHAR"),
        ("new_value", "VARCHAR"),
        ("policy_version", "INTEGER"),
        ("warning", "VARCHAR"),
    ],
    "public_headcount": [
        ("customer_id", "VARCHAR"),
        ("as_of", "DATE"),
        ("dimension", "VARCHAR"),
        ("group_value", "VARCHAR"),
        ("headcount", "INTEGER"),
    ],
    "release_allocations": [
        ("release_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("period", "VARCHAR"),
        ("figure_set", "VARCHAR"),
        ("dimension", "VARCHAR"),
        ("measured", "BOOLEAN"),
        ("share", "DOUBLE"),
        ("reason", "VARCHAR"),
    ],
}


def _schema(path: Path) -> dict[str, list[tuple[str, str]]]:
    con = duckdb.connect(str(path), read_only=True)  # no key: the published store is not the raw store
    try:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY table_name, column_index"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for t, c, d in rows:
        out.setdefault(t, []).append((c, d))
    return out


def test_published_store_has_exactly_the_documented_tables_and_no_identifier(rsettings: Settings) -> None:
    with control_connection(rsettings) as con:
        set_policy_value(con, "k", "11", customer_id=None, changed_by="po")
    run_release(rsettings, C, "2025-04", requested_by="t")
    assert _schema(rsettings.published_path) == EXPECTED_SCHEMA
    con = duckdb.connect(str(rsettings.published_path), read_only=True)
    try:
        assert check_no_identifiers(con).passed
        # and no value from the raw store's identifier columns appears anywhere in it
        text = " ".join(
            str(v) for t in EXPECTED_SCHEMA for row in con.execute(f"SELECT * FROM {t}").fetchall() for v in row
        )
    finally:
        con.close()
    with raw_connection(rsettings, read_only=True) as raw:
        # the pseudonyms and event ids (the surrogate ids in events.employee are small integers that
        # stand for a pseudonym only inside the raw store; they mean nothing outside it)
        secrets = [
            r[0] for r in raw.execute("SELECT pseudonym FROM pseudonyms UNION SELECT event_id FROM events").fetchall()
        ]
    assert secrets and not any(s in text for s in secrets)
    assert not any(p.name.startswith("published.duckdb.tmp") for p in rsettings.home.iterdir())


def test_control_store_holds_no_personal_data(rsettings: Settings) -> None:
    with control_connection(rsettings) as con:
        set_policy_value(con, "epsilon_annual", "6", customer_id=C, changed_by="po")
        rid = request_release(con, C, ["2025-01"], "po")
        claim_pending_requests(con)
        update_request_status(con, rid, "done", "1 released")
    run_release(rsettings, C, "2025-01", requested_by="t")
    con = duckdb.connect(str(rsettings.control_path), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert tables == {"policy_values", "policy_history", "release_requests"}
        assert identifier_columns(con, "control") == []
        values = [str(v) for t in tables for row in con.execute(f"SELECT * FROM {t}").fetchall() for v in row]
    finally:
        con.close()
    with raw_connection(rsettings, read_only=True) as raw:
        personal = {
            r[0]
            for r in raw.execute(
                "SELECT pseudonym FROM pseudonyms UNION SELECT event_id FROM events "
                "UNION SELECT department FROM events UNION SELECT site FROM events WHERE site IS NOT NULL"
            ).fetchall()
        }
    assert values and not (set(values) & personal)


def test_published_file_is_swapped_while_a_read_only_reader_is_open(rsettings: Settings) -> None:
    first = run_release(rsettings, C, "2025-05", requested_by="t")
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(rsettings.published_path)!r}, read_only=True)\n"
            "print(con.execute('SELECT release_id FROM releases').fetchone()[0], flush=True)\n"
            "sys.stdin.readline()\n"
            "print(con.execute('SELECT release_id FROM releases').fetchone()[0], flush=True)\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == first.release_id  # type: ignore[union-attr]
        start = time.monotonic()
        second = run_release(rsettings, C, "2025-05", requested_by="po", reissue=True)  # publishes; never waits
        assert time.monotonic() - start < 30
        reader.stdin.write("\n")  # type: ignore[union-attr]
        reader.stdin.flush()  # type: ignore[union-attr]
        assert reader.stdout.readline().strip() == first.release_id  # type: ignore[union-attr]  # old snapshot
    finally:
        reader.wait(timeout=30)
    assert published(rsettings, "SELECT release_id FROM releases") == [(second.release_id,)]  # new readers: new file


def test_checks_pass_on_a_real_release_and_fail_on_a_tampered_store(rsettings: Settings, tmp_path: Path) -> None:
    for customer in CUSTOMERS:
        run_release(rsettings, customer, "2025-03", requested_by="t")
        run_release(rsettings, customer, "2025-Q1", requested_by="t")  # services and topics: some hidden cells
    caps = {c: DEFAULT_POLICY for c in CUSTOMERS}
    con = duckdb.connect(str(rsettings.published_path), read_only=True)
    try:
        assert check_thresholds(con).passed
        assert check_ledger_within_cap(con, caps).passed
        assert check_no_identifiers(con).passed
        visible = con.execute(
            "SELECT count(*) FROM release_cells WHERE NOT suppressed AND metric = 'engaged_employees'"
        ).fetchone()[0]
    finally:
        con.close()
    assert visible > 0

    tampered = tmp_path / "tampered.duckdb"
    shutil.copy(rsettings.published_path, tampered)
    con = duckdb.connect(str(tampered))
    try:
        # a suppressed group shown with a small value: below threshold
        con.execute(
            "UPDATE release_cells SET suppressed = false, status = 'published', value = 4, ci_low = 1, ci_high = 7, "
            "reason = NULL WHERE rowid = (SELECT min(rowid) FROM release_cells WHERE suppressed "
            "AND metric = 'engaged_employees')"
        )
        # a visible cell with a count just above k but an interval far too wide for that margin
        con.execute(
            "UPDATE release_cells SET value = 12, ci_low = -60, ci_high = 84 WHERE rowid = (SELECT min(rowid) "
            "FROM release_cells WHERE NOT suppressed AND metric = 'engaged_employees')"
        )
        finding = check_thresholds(con)
        assert not finding.passed and finding.offending == 2
        assert all(str(4) not in e.split()[-1] for e in finding.examples)  # labels, never values
        con.execute("ALTER TABLE release_cells ADD COLUMN employee VARCHAR")
        con.execute("CREATE TABLE events_copy (x INTEGER)")
        ids = check_no_identifiers(con)
        assert (
            not ids.passed
            and "release_cells.employee" in ids.examples
            and "unexpected table events_copy" in ids.examples
        )
        con.execute(
            "INSERT INTO budget_ledger SELECT entry_id + 100, customer_id, '2025-04', release_id, 'reissue', 2.9, "
            "epsilon, delta, policy_version, created_at, code_version, requested_by FROM budget_ledger "
            f"WHERE customer_id = '{C}'"
        )
        cap = check_ledger_within_cap(con, caps)
        assert not cap.passed and cap.offending == 1 and C in cap.examples[0]
        # a suppressed cell carrying a value
        con.execute(
            "UPDATE release_cells SET value = 3 WHERE rowid = (SELECT max(rowid) FROM release_cells WHERE suppressed)"
        )
        assert check_thresholds(con).offending == 3
    finally:
        con.close()


def test_identifier_check_before_swap_keeps_the_old_file(rsettings: Settings) -> None:
    """A structural failure of the rebuilt file leaves the previous published store in place."""
    import polars as pl

    from pipeline.releases import publish as publish_module
    from stores import published as published_schema

    run_release(rsettings, C, "2025-03", requested_by="t")
    before = rsettings.published_path.read_bytes()
    original = dict(published_schema.TABLES)
    # a regression adding a lookup table
    published_schema.TABLES["client_map"] = (published_schema.Column("client_ref", pl.String),)
    try:
        with shard_connection(rsettings, C) as raw, pytest.raises(publish_module.PublishRefused, match="client_ref"):
            publish_module.publish(rsettings, raw, find_shard(rsettings, C))
    finally:
        published_schema.TABLES.clear()
        published_schema.TABLES.update(original)
    assert rsettings.published_path.read_bytes() == before
    assert not any(p.name.startswith("published.duckdb.tmp") for p in rsettings.home.iterdir())
