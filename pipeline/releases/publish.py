"""Rebuild ``published.duckdb`` from the stored draws and swap it in atomically.

Privacy reason: the published store is the only file the dashboards and ``wellbeing
export`` may open. It is rebuilt from the raw store's stored draws (current version of
each customer-period only), the authoritative ledger and the control store's policy
history, with exactly the tables and columns of ``docs/architecture.md`` — no identifier
column of any kind, checked before the swap.

DuckDB: even a read-only reader blocks a writer, so the file is never written in place.
It is built as ``published.duckdb.tmp-<pid>`` (CHECKPOINT, DETACH) and moved over the old
file with ``os.replace``; open readers keep their snapshot, new connections see the new file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import polars as pl

from privacy.policy_store import policy_history
from pipeline.control_store import control_connection
from pipeline.releases.release_store import ensure_release_schema
from pipeline.settings import Settings

PUBLISHED_DDL: dict[str, str] = {
    "releases": """(
        release_id VARCHAR, customer_id VARCHAR, period VARCHAR, granularity VARCHAR,
        version INTEGER, created_at TIMESTAMP, requested_by VARCHAR,
        rho DOUBLE, epsilon DOUBLE, delta DOUBLE, accounting VARCHAR,
        policy_version INTEGER, code_version VARCHAR, k INTEGER, k_scores INTEGER, z DOUBLE)""",
    "release_cells": """(
        release_id VARCHAR, customer_id VARCHAR, period VARCHAR, dimension VARCHAR, group_value VARCHAR,
        metric VARCHAR, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, suppressed BOOLEAN, reason VARCHAR)""",
    "budget_ledger": """(
        entry_id BIGINT, customer_id VARCHAR, period VARCHAR, release_id VARCHAR, kind VARCHAR,
        rho DOUBLE, epsilon DOUBLE, delta DOUBLE, policy_version INTEGER,
        created_at TIMESTAMP, code_version VARCHAR, requested_by VARCHAR)""",
    "policy_history": """(
        changed_at TIMESTAMP, changed_by VARCHAR, scope VARCHAR, key VARCHAR,
        old_value VARCHAR, new_value VARCHAR, policy_version INTEGER)""",
    "public_headcount": """(
        customer_id VARCHAR, as_of DATE, dimension VARCHAR, group_value VARCHAR, headcount INTEGER)""",
}
PUBLISHED_TABLES: tuple[str, ...] = tuple(PUBLISHED_DDL)

# A column whose name contains one of these would identify people or their records.
IDENTIFIER_PATTERN = re.compile(r"employee|pseudonym|client|event|hash|email|name|person|user_id|ssn", re.I)

_CURRENT = """
    SELECT * FROM release_draws d
    WHERE d.version = (SELECT max(version) FROM release_draws x
                       WHERE x.customer_id = d.customer_id AND x.period = d.period)
"""


class PublishRefused(RuntimeError):
    """The rebuilt published file failed its structural check; the old file was left in place."""


def identifier_columns(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    """``table.column`` names in ``database`` that look like identifiers of people or records."""
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? ORDER BY 1, 2", [database]
    ).fetchall()
    return [f"{t}.{c}" for t, c in rows if IDENTIFIER_PATTERN.search(c)]


def publish(settings: Settings, raw_con: duckdb.DuckDBPyConnection) -> Path:
    """Rebuild the published store from ``raw_con`` (a read-write raw-store connection) and swap it in."""
    ensure_release_schema(raw_con)
    with control_connection(settings, read_only=True) as control:
        history = policy_history(control)
    target = settings.published_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    alias = f"wb_pub_{os.getpid()}"
    raw_con.execute(f"ATTACH '{_sql_path(tmp)}' AS {alias}")
    try:
        for table, columns in PUBLISHED_DDL.items():
            raw_con.execute(f"CREATE TABLE {alias}.{table} {columns}")
        raw_con.execute(
            f"INSERT INTO {alias}.releases SELECT release_id, customer_id, period, granularity, version, "
            "created_at, requested_by, rho, epsilon, delta, accounting, policy_version, code_version, "
            f"k, k_scores, z FROM ({_CURRENT}) ORDER BY customer_id, period"
        )
        raw_con.execute(
            f"INSERT INTO {alias}.release_cells SELECT c.release_id, c.customer_id, c.period, c.dimension, "
            "c.group_value, c.metric, "
            "CASE WHEN c.suppressed THEN NULL ELSE c.value END, "
            "CASE WHEN c.suppressed THEN NULL ELSE c.ci_low END, "
            "CASE WHEN c.suppressed THEN NULL ELSE c.ci_high END, c.suppressed, c.reason "
            f"FROM release_draw_cells c JOIN ({_CURRENT}) d USING (release_id) "
            "ORDER BY c.customer_id, c.period, c.dimension, c.group_value, c.metric"
        )
        raw_con.execute(
            f"INSERT INTO {alias}.budget_ledger SELECT entry_id, customer_id, period, release_id, kind, rho, "
            "epsilon, delta, policy_version, created_at, code_version, requested_by FROM budget_ledger ORDER BY entry_id"
        )
        raw_con.execute(
            f"INSERT INTO {alias}.public_headcount SELECT DISTINCT h.customer_id, h.as_of, h.dimension, "
            f"h.group_value, h.headcount FROM release_public_headcount h JOIN ({_CURRENT}) d USING (release_id) "
            "ORDER BY 1, 2, 3, 4"
        )
        history_frame = history.select(pl.all())  # a local frame DuckDB can scan by name
        raw_con.register("_wb_policy_history", history_frame)
        raw_con.execute(
            f"INSERT INTO {alias}.policy_history SELECT changed_at, changed_by, scope, key, old_value, "
            "new_value, policy_version FROM _wb_policy_history ORDER BY policy_version"
        )
        raw_con.unregister("_wb_policy_history")
        found = identifier_columns(raw_con, alias)
        tables = {
            r[0]
            for r in raw_con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [alias]
            ).fetchall()
        }
        if found or tables != set(PUBLISHED_TABLES):
            raise PublishRefused(
                f"published store failed its structural check (identifier-like columns {found}, tables "
                f"{sorted(tables)}); the previous published store was kept"
            )
        # Re-verify the thresholds on the new file *before* it becomes visible to any reader.
        from pipeline.releases.checks import check_thresholds  # checks imports this module

        raw_con.execute(f"USE {alias}")
        try:
            thresholds = check_thresholds(raw_con)
        finally:
            raw_con.execute("USE raw")
        if not thresholds.passed:
            raise PublishRefused(
                f"published store failed its threshold check ({thresholds.description}); "
                "the previous published store was kept"
            )
        raw_con.execute(f"CHECKPOINT {alias}")
    except BaseException:
        raw_con.execute(f"DETACH {alias}")
        tmp.unlink(missing_ok=True)
        raise
    raw_con.execute(f"DETACH {alias}")
    os.replace(tmp, target)
    return target


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
