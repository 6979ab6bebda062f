"""Rebuild ``published.duckdb`` from the per-customer parts and swap it in atomically.

Privacy reason: the published store is the only file the dashboards and ``wellbeing
export`` may open. Each customer's release step writes its *part*
(``published-parts/<shard_id>.duckdb``: the current draw of each period with suppressed
numbers NULL, its ledger, public headcount and allocations; :func:`write_part`) from its
own shard; :func:`merge_published` then builds the published store from every part and the
control store's policy history, under an ``fcntl`` lock, without opening any shard, with
exactly the tables and columns of :mod:`stores.published` — no identifier column of any
kind and the thresholds re-checked, before the swap.

DuckDB: even a read-only reader blocks a writer, so the file is never written in place.
It is built as ``published.duckdb.tmp-<pid>`` (CHECKPOINT, DETACH) and moved over the old
file with ``os.replace``; open readers keep their snapshot, new connections see the new file.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from pipeline.releases.checks import check_thresholds
from pipeline.releases.release_store import ensure_release_schema
from pipeline.settings import Settings
from stores import published
from stores.control import control_connection, policy_history
from stores.published import identifier_columns, unexpected_tables

if TYPE_CHECKING:
    from pipeline.shards import Shard

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


PART_TABLES = ("releases", "release_cells", "budget_ledger", "public_headcount", "release_allocations")


def part_path(settings: Settings, shard_id: str) -> Path:
    return settings.published_parts_dir / f"{shard_id}.duckdb"


def write_part(settings: Settings, shard_con: duckdb.DuckDBPyConnection, shard: Shard) -> Path:
    """Write the customer's published part from its shard (``shard_con``: ``USE raw`` = the shard).

    Only what the published store holds: the current draw of each period (suppressed numbers
    NULL), the ledger, the public headcount and allocations of the current draws. Built beside
    and moved in with ``os.replace`` (a merge never reads half a part).

    With a shard bucket the shard is uploaded first (:func:`pipeline.shards.upload_shard`): no
    release is published whose draw and ledger row are not in the bucket's copy (a conflict
    raises before anything is written here).
    """
    from pipeline.shards import upload_shard

    upload_shard(settings, shard, shard_con)
    ensure_release_schema(shard_con)
    folder = settings.published_parts_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = part_path(settings, shard.shard_id)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    alias = f"wb_part_{os.getpid()}"
    shard_con.execute(f"ATTACH '{_sql_path(tmp)}' AS {alias}")
    try:
        shard_con.execute(published.ddl(database=alias))
        shard_con.execute(
            f"INSERT INTO {alias}.releases SELECT {published.column_sql('releases')} FROM ({_CURRENT}) "
            "ORDER BY customer_id, period"
        )
        shard_con.execute(f"INSERT INTO {alias}.release_cells {_cell_select()}")
        shard_con.execute(
            f"INSERT INTO {alias}.budget_ledger SELECT {published.column_sql('budget_ledger')} "
            "FROM budget_ledger ORDER BY entry_id"
        )
        headcount = published.column_sql("public_headcount", prefix="h.")
        shard_con.execute(
            f"INSERT INTO {alias}.public_headcount SELECT DISTINCT {headcount} "
            f"FROM release_public_headcount h JOIN ({_CURRENT}) d USING (release_id) ORDER BY 1, 2, 3, 4"
        )
        shard_con.execute(
            f"INSERT INTO {alias}.release_allocations SELECT {published.column_sql('release_allocations', prefix='a.')} "
            f"FROM release_draw_allocations a JOIN ({_CURRENT}) d USING (release_id) ORDER BY 2, 3, 4, 5"
        )
        shard_con.execute(f"CHECKPOINT {alias}")
    except BaseException:
        shard_con.execute(f"DETACH {alias}")
        tmp.unlink(missing_ok=True)
        raise
    shard_con.execute(f"DETACH {alias}")
    with _merge_lock(settings):  # the same lock a removal deletes the part under
        if not settings.customer_key_file(shard.shard_id).exists():
            tmp.unlink(missing_ok=True)
            from pipeline.shards import ShardError

            raise ShardError(
                f"customer {shard.customer_id} was removed while its release ran (its key share is destroyed); "
                "nothing of it was published"
            )
        os.replace(tmp, target)
    return target


def _live_parts(settings: Settings) -> list[Path]:
    """Every part whose customer still has its key share (a removed customer's part is never merged).

    A release of a customer removed in another process meanwhile may have written its part after
    the removal deleted it: the destroyed share decides. Such a part is skipped, not deleted, so a
    share restored from a backup brings its customer back. No share at all beside existing parts
    means a process without the key folder (``WELLBEING_KEY_DIR``): refused, the published store kept.
    """
    parts = sorted(p for p in settings.published_parts_dir.glob("*.duckdb") if p.is_file())
    if parts and not any(settings.customer_keys_dir.glob("*.key")):
        raise PublishRefused(
            f"no customer key share in {settings.customer_keys_dir}: run the publish where the releases run "
            "(the same WELLBEING_KEY_DIR); the previous published store was kept"
        )
    return [p for p in parts if settings.customer_key_file(p.stem).exists()]


def remove_part(settings: Settings, shard_id: str) -> None:
    """Delete a removed customer's published part (the next merge no longer has its releases)."""
    with _merge_lock(settings):
        part_path(settings, shard_id).unlink(missing_ok=True)


@contextmanager
def _merge_lock(settings: Settings) -> Iterator[None]:
    """An exclusive ``fcntl`` lock: one merge at a time, so no publisher loses another's part."""
    settings.published_parts_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.published_parts_dir / ".merge.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def publish(settings: Settings, shard_con: duckdb.DuckDBPyConnection, shard: Shard) -> Path:
    """Write the customer's part from its open shard, then rebuild the published store from every part."""
    write_part(settings, shard_con, shard)
    return merge_published(settings)


def merge_published(settings: Settings) -> Path:
    """Rebuild ``published.duckdb`` from every customer's part and swap it in (``os.replace``).

    Under an exclusive file lock: a publisher that takes the lock after another's part was
    replaced reads it, so concurrent publishers never lose a release. No shard is opened.
    """
    with control_connection(settings, read_only=True) as control:
        history = policy_history(control)
    target = settings.published_path
    target.parent.mkdir(parents=True, exist_ok=True)
    with _merge_lock(settings):
        parts = _live_parts(settings)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        con = duckdb.connect(config={"threads": "2"})
        alias = "wb_pub"
        try:
            con.execute(f"ATTACH '{_sql_path(tmp)}' AS {alias}")
            con.execute(published.ddl(database=alias))
            for i, part in enumerate(parts):
                con.execute(f"ATTACH '{_sql_path(part)}' AS p{i} (READ_ONLY)")
            for table in PART_TABLES:
                if parts:
                    columns = published.column_sql(table)
                    union = " UNION ALL ".join(f"SELECT {columns} FROM p{i}.{table}" for i in range(len(parts)))
                    con.execute(f"INSERT INTO {alias}.{table} SELECT * FROM ({union}) ORDER BY ALL")
            history_frame = history.select(pl.all())  # a local frame DuckDB can scan by name
            con.register("_wb_policy_history", history_frame)
            con.execute(
                f"INSERT INTO {alias}.policy_history SELECT {published.column_sql('policy_history')} "
                "FROM _wb_policy_history ORDER BY policy_version"
            )
            con.unregister("_wb_policy_history")
            found = identifier_columns(con, alias)
            extra, missing = unexpected_tables(con, alias)
            if found or extra or missing:
                raise PublishRefused(
                    f"published store failed its structural check (identifier-like columns {found}, unexpected "
                    f"tables {extra}, missing tables {missing}); the previous published store was kept"
                )
            # Re-verify the thresholds on the new file *before* it becomes visible to any reader.
            con.execute(f"USE {alias}")
            thresholds = check_thresholds(con)
            if not thresholds.passed:
                raise PublishRefused(
                    f"published store failed its threshold check ({thresholds.description}); "
                    "the previous published store was kept"
                )
            con.execute(f"CHECKPOINT {alias}")
            con.execute("USE memory")
            con.execute(f"DETACH {alias}")
        except BaseException:
            con.close()
            tmp.unlink(missing_ok=True)
            raise
        con.close()
        os.replace(tmp, target)
    return target


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
