"""Rebuild ``published.duckdb`` from the stored draws and swap it in atomically.

Privacy reason: the published store is the only file the dashboards and ``wellbeing
export`` may open. It is rebuilt from the raw store's stored draws (current version of
each customer-period only), the authoritative ledger and the control store's policy
history, with exactly the tables and columns of :mod:`stores.published` — no identifier
column of any kind, checked before the swap.

DuckDB: even a read-only reader blocks a writer, so the file is never written in place.
It is built as ``published.duckdb.tmp-<pid>`` (CHECKPOINT, DETACH) and moved over the old
file with ``os.replace``; open readers keep their snapshot, new connections see the new file.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl

from pipeline.releases.checks import check_thresholds
from pipeline.releases.release_store import ensure_release_schema
from pipeline.settings import Settings
from stores import published
from stores.control import control_connection, policy_history
from stores.published import identifier_columns, unexpected_tables

_CURRENT = """
    SELECT * FROM release_draws d
    WHERE d.version = (SELECT max(version) FROM release_draws x
                       WHERE x.customer_id = d.customer_id AND x.period = d.period)
"""


def _cell_select() -> str:
    """The published cells of the current draws; every number of a suppressed cell is NULL."""
    masked = set(published.MASKED_CELL_COLUMNS)
    columns = ", ".join(
        f"CASE WHEN c.suppressed THEN NULL ELSE c.{name} END" if name in masked else f"c.{name}"
        for name in published.column_names("release_cells")
    )
    order = ", ".join(f"c.{name}" for name in published.CELL_KEY_COLUMNS)
    return f"SELECT {columns} FROM release_draw_cells c JOIN ({_CURRENT}) d USING (release_id) ORDER BY {order}"


class PublishRefused(RuntimeError):
    """The rebuilt published file failed its structural check; the old file was left in place."""


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
        raw_con.execute(published.ddl(database=alias))
        raw_con.execute(
            f"INSERT INTO {alias}.releases SELECT {published.column_sql('releases')} FROM ({_CURRENT}) "
            "ORDER BY customer_id, period"
        )
        raw_con.execute(f"INSERT INTO {alias}.release_cells {_cell_select()}")
        raw_con.execute(
            f"INSERT INTO {alias}.budget_ledger SELECT {published.column_sql('budget_ledger')} "
            "FROM budget_ledger ORDER BY entry_id"
        )
        headcount = published.column_sql("public_headcount", prefix="h.")
        raw_con.execute(
            f"INSERT INTO {alias}.public_headcount SELECT DISTINCT {headcount} "
            f"FROM release_public_headcount h JOIN ({_CURRENT}) d USING (release_id) ORDER BY 1, 2, 3, 4"
        )
        raw_con.execute(
            f"INSERT INTO {alias}.release_allocations SELECT {published.column_sql('release_allocations', prefix='a.')} "
            f"FROM release_draw_allocations a JOIN ({_CURRENT}) d USING (release_id) ORDER BY 2, 3, 4, 5"
        )
        history_frame = history.select(pl.all())  # a local frame DuckDB can scan by name
        raw_con.register("_wb_policy_history", history_frame)
        raw_con.execute(
            f"INSERT INTO {alias}.policy_history SELECT {published.column_sql('policy_history')} "
            "FROM _wb_policy_history ORDER BY policy_version"
        )
        raw_con.unregister("_wb_policy_history")
        found = identifier_columns(raw_con, alias)
        extra, missing = unexpected_tables(raw_con, alias)
        if found or extra or missing:
            raise PublishRefused(
                f"published store failed its structural check (identifier-like columns {found}, unexpected "
                f"tables {extra}, missing tables {missing}); the previous published store was kept"
            )
        # Re-verify the thresholds on the new file *before* it becomes visible to any reader.
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
