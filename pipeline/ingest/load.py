"""Atomic, idempotent load of one delivery into the raw store.

One file = one transaction: store the pseudonyms of new people (surrogate ids),
delete the replaced events, insert the new ones (with the integer ``employee`` id),
write quarantine rows and the ``deliveries`` row, commit. A crash before the
commit leaves the store exactly as it was (DuckDB discards the uncommitted
transaction on reopen).

Duplicate / replacement rule (also in docs/data-contract.md):

* within one file, the last valid occurrence of an ``event_id`` wins; earlier
  valid occurrences count as ``duplicate``;
* across deliveries, a valid row whose ``event_id`` is already stored replaces
  the stored row (last delivery wins) and counts as ``replaced``; if the stored
  row is identical it is left untouched and counts as ``duplicate``;
* a headcount delivery replaces every stored row of the same customer and
  ``as_of`` month.

Test hook: when ``WELLBEING_TEST_PAUSE_AFTER_STAGE`` is set to a number of
seconds, the loader prints ``WELLBEING_TEST_PAUSED`` to stderr after inserting
the events (inside the open transaction) and sleeps, so a test can kill the
process mid-transaction. It has no other effect.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb

from privacy.pseudonymise import hmac_sql, hmac_sql_params

from pipeline.ingest.readers import FileRefused, Source, open_source, refusal_for_read_error
from pipeline.ingest.rules import STAGE_TABLE, StagePlan, plan_stage, quarantine_select

TEST_PAUSE_ENV = "WELLBEING_TEST_PAUSE_AFTER_STAGE"
PAUSE_MARKER = "WELLBEING_TEST_PAUSED"

_IDS = "_ingest_ids"  # temp table: client_ref -> employee (surrogate id), new or already stored
_OVERLAP = "_ingest_overlap"
_EVENT_VALUE_COLUMNS = (
    "customer_id", "employee", "site", "department", "role", "service",
    "occurred_on", "duration_min", "who5_raw", "satisfaction", "topic",
)  # fmt: skip
_NOT_THE_FILES_FAULT = (duckdb.OutOfMemoryException, duckdb.InterruptException)
_HEADCOUNT_COLUMNS = ("customer_id", "site", "department", "role", "headcount", "as_of")
_HEADCOUNT_KEY = "customer_id, as_of, site, department, role"  # one row per group and month


@dataclass(frozen=True)
class FileReport:
    """What one delivery did to the store: counts and file name only, never row values."""

    path: Path
    kind: Literal["events", "headcount"]
    rows_total: int
    accepted: int
    quarantined: int
    duplicate: int
    replaced: int
    customers: tuple[str, ...]
    delivery_id: int = 0
    file_format: str = ""

    def summary(self) -> str:
        return (
            f"{self.path.name}: {self.kind} ({self.file_format}), {self.rows_total} rows: "
            f"{self.accepted} accepted, {self.quarantined} quarantined, "
            f"{self.duplicate} duplicate, {self.replaced} replaced"
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def ingest_file(con: duckdb.DuckDBPyConnection, path: Path, pseudonym_key: bytes) -> FileReport:
    """Validate, pseudonymise and load one file in one transaction; raises :class:`FileRefused`.

    ``con`` is an open raw-store connection (``USE raw``). Nothing is stored when
    the file is refused. The caller is responsible for the key being the store's
    pseudonym key (:func:`pipeline.ingest.load_pseudonym_key` checks it).
    """
    path = Path(path)
    source = open_source(con, path)
    plan = plan_stage(source)
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            try:
                # File order must survive staging: rowid + 1 is the data row number.
                con.execute("SET preserve_insertion_order = true")
                con.execute(plan.sql)
            except _NOT_THE_FILES_FAULT:
                raise  # resource problems are not refusals (their messages hold no cell values)
            except duckdb.Error as exc:
                raise refusal_for_read_error(path, source.format, exc) from None
            key = "event_id" if source.kind == "events" else _HEADCOUNT_KEY
            rows_total, rows_bad, valid, distinct_hashes = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE _problems <> 0), count(*) FILTER (WHERE _problems = 0), "
                f"count(DISTINCT hash({key})) FILTER (WHERE _problems = 0) FROM {STAGE_TABLE}"
            ).fetchone()  # type: ignore[misc]
            if rows_total == 0:
                raise FileRefused(path, "the file has a header but no data rows")
            # From here on order does not matter; letting DuckDB reorder makes the joins/inserts faster.
            con.execute("SET preserve_insertion_order = false")
            digest = pool.submit(_sha256, path)  # hashlib releases the GIL: beside DuckDB's work
            duplicates = _count_duplicates(con, key, valid, distinct_hashes)
            return _commit(con, source, plan, rows_total, rows_bad, duplicates, digest, pseudonym_key)
        finally:
            for table in (STAGE_TABLE, _IDS, _OVERLAP):
                con.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _assign_employee_ids(con: duckdb.DuckDBPyConnection, key: bytes) -> int:
    """Pseudonymise this delivery's client refs, map them to surrogate ids, store the new people.

    Runs inside the file's transaction. The DISTINCT client refs (not rows) of the valid staged
    rows are hashed inside DuckDB (:func:`privacy.pseudonymise.hmac_sql`); the map client_ref ->
    id is a temporary table of this connection, dropped after the file, so the client_ref never
    reaches a stored table. A pseudonym already in ``pseudonyms`` keeps its id (same client_ref,
    same HMAC, same id in every delivery); new ones get ``max + 1, ...`` in pseudonym order,
    which is keyed-random, so the id carries nothing of the client_ref. Returns the number of
    new people.
    """
    (base,) = con.execute("SELECT coalesce(max(employee), 0) FROM pseudonyms").fetchone()  # type: ignore[misc]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_IDS} AS "
        "SELECT client_ref, pseudonym, known IS NULL AS new, "
        "coalesce(known, $base + row_number() OVER (PARTITION BY known IS NULL ORDER BY pseudonym)) AS employee "
        f"FROM (SELECT r.client_ref, r.pseudonym, p.employee AS known "
        f"FROM (SELECT client_ref, {hmac_sql('client_ref')} AS pseudonym "
        f"FROM (SELECT DISTINCT client_ref FROM {STAGE_TABLE} WHERE _problems = 0)) r "
        "LEFT JOIN pseudonyms p ON p.pseudonym = r.pseudonym)",
        {"base": base, **hmac_sql_params(key)},
    )
    (new,) = con.execute(
        f"INSERT INTO pseudonyms SELECT employee, pseudonym FROM {_IDS} WHERE new"
    ).fetchone()  # type: ignore[misc]
    return int(new)


def _count_duplicates(con: duckdb.DuckDBPyConnection, key: str, valid: int, distinct_hashes: int) -> int:
    """Valid staged rows minus distinct keys: the earlier occurrences that the last one supersedes.

    Exact, with a cheap first pass (``distinct_hashes``, counted with the rows): distinct
    64-bit hashes of the key are at most the distinct keys, which are at most the rows, so
    equal counts prove there is no duplicate (the usual case) without aggregating millions of
    strings. Otherwise the keys themselves are counted.
    """
    if distinct_hashes == valid:
        return 0
    (distinct,) = con.execute(
        f"SELECT count(DISTINCT ({key})) FROM {STAGE_TABLE} WHERE _problems = 0"
    ).fetchone()  # type: ignore[misc]
    return int(valid - distinct)


def _commit(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    plan: StagePlan,
    rows_total: int,
    rows_bad: int,
    duplicate: int,
    digest: Future[str],
    pseudonym_key: bytes,
) -> FileReport:
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        (delivery_id,) = con.execute("SELECT coalesce(max(delivery_id), 0) + 1 FROM deliveries").fetchone()  # type: ignore[misc]
        if source.kind == "events":
            accepted, duplicate, replaced = _load_events(con, delivery_id, now, duplicate, pseudonym_key)
        else:
            accepted, replaced = _load_headcount(con, delivery_id)
        _pause_for_tests()
        con.execute(
            f"INSERT INTO quarantine SELECT ?, ?, row_number, column_name, reason, ? FROM ({quarantine_select(plan)})",
            [delivery_id, source.path.name, now],
        )
        con.execute(
            "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [delivery_id, source.path.name, digest.result(), source.kind, source.format, rows_total,
             accepted, rows_bad, duplicate, replaced, now],
        )  # fmt: skip
        customers = tuple(
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT customer_id FROM {STAGE_TABLE} WHERE _problems = 0 ORDER BY 1"
            ).fetchall()
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return FileReport(
        path=source.path, kind=source.kind, rows_total=rows_total, accepted=accepted, quarantined=rows_bad,
        duplicate=duplicate, replaced=replaced, customers=customers, delivery_id=delivery_id,
        file_format=source.format,
    )  # fmt: skip


def _load_events(
    con: duckdb.DuckDBPyConnection, delivery_id: int, now: datetime, duplicate: int, pseudonym_key: bytes
) -> tuple[int, int, int]:
    _assign_employee_ids(con, pseudonym_key)
    last_only = (
        f" AND s.rowid IN (SELECT max(rowid) FROM {STAGE_TABLE} WHERE _problems = 0 GROUP BY event_id)"
        if duplicate
        else ""
    )
    new_rows = (
        "SELECT s.event_id, s.customer_id, i.employee, s.site, s.department, s.role, s.service, s.occurred_on, "
        "s.duration_min, s.who5_raw, s.satisfaction, s.topic "
        f"FROM {STAGE_TABLE} s JOIN {_IDS} i ON i.client_ref = s.client_ref WHERE s._problems = 0{last_only}"
    )
    replaced = 0
    skip = ""
    (stored,) = con.execute("SELECT count(*) FROM events").fetchone()  # type: ignore[misc]
    if stored:
        same = " AND ".join(f"e.{c} IS NOT DISTINCT FROM n.{c}" for c in _EVENT_VALUE_COLUMNS)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_OVERLAP} AS SELECT n.event_id, ({same}) AS same "
            f"FROM ({new_rows}) n JOIN events e ON e.event_id = n.event_id"
        )
        (replaced, unchanged) = con.execute(
            f"SELECT count(*) FILTER (WHERE NOT same), count(*) FILTER (WHERE same) FROM {_OVERLAP}"
        ).fetchone()  # type: ignore[misc]
        if replaced:
            con.execute(f"DELETE FROM events WHERE event_id IN (SELECT event_id FROM {_OVERLAP} WHERE NOT same)")
        if unchanged:
            duplicate += unchanged
            skip = f" WHERE n.event_id NOT IN (SELECT event_id FROM {_OVERLAP} WHERE same)"
    (accepted,) = con.execute(
        f"INSERT INTO events SELECT n.*, ?, ? FROM ({new_rows}) n{skip}", [delivery_id, now]
    ).fetchone()  # type: ignore[misc]
    return int(accepted), int(duplicate), int(replaced)


def _load_headcount(con: duckdb.DuckDBPyConnection, delivery_id: int) -> tuple[int, int]:
    """Replace the customer's structure for every (customer, as_of month) in the delivery."""
    (replaced,) = con.execute(
        "DELETE FROM headcount h USING "
        f"(SELECT DISTINCT customer_id, as_of FROM {STAGE_TABLE} WHERE _problems = 0) n "
        "WHERE h.customer_id = n.customer_id AND h.as_of = n.as_of"
    ).fetchone()  # type: ignore[misc]
    cols = ", ".join(_HEADCOUNT_COLUMNS)
    (accepted,) = con.execute(
        f"INSERT INTO headcount SELECT {cols}, ? FROM {STAGE_TABLE} WHERE _problems = 0 AND rowid IN "
        f"(SELECT max(rowid) FROM {STAGE_TABLE} WHERE _problems = 0 GROUP BY {_HEADCOUNT_KEY})",
        [delivery_id],
    ).fetchone()  # type: ignore[misc]
    return int(accepted), int(replaced)


def _pause_for_tests() -> None:
    """Documented test hook: hold the open transaction so a test can SIGKILL the process."""
    seconds = os.environ.get(TEST_PAUSE_ENV)
    if seconds:
        print(PAUSE_MARKER, file=sys.stderr, flush=True)
        time.sleep(float(seconds))
