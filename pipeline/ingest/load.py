"""Atomic, idempotent load of one delivery into the raw store.

One file = one transaction. The file is never materialised: the staging SELECT of
:mod:`pipeline.ingest.rules` (typed columns + ``_problems`` mask) is read several
times, each a streaming, parallel read of the file:

1. count (events: per distinct ``(client_ref, customer_id)``, into a small temp table, with
   the 64-bit hashes of the valid rows' ``event_id``): rows, bad rows, valid rows, distinct
   key hashes, customers. Read errors surface here and become refusals, as does a file with
   a header but no rows. The DISTINCT ``client_ref`` of the valid rows are then
   pseudonymised and mapped to surrogate ids (new people stored) from that table, without
   reading the file again;
2. only when the key hashes show a possible duplicate: the exact count of distinct keys;
3. load: (events) stored events with the same ``event_id`` are looked up (only if the store
   holds events: one more pass), then the valid rows joined with their ids are inserted;
   (headcount) the valid rows replace the stored structure of their (customer, month).
   With duplicates, rows are numbered in file order (``row_number() OVER ()`` under
   ``preserve_insertion_order``) and the last occurrence of each key is kept. When pass 1
   found no bad row in an event file, the rule mask is not evaluated again (see
   :func:`_valid_rows`);
4. only when pass 1 found bad rows: quarantine rows, numbered in file order the same way;

then the ``deliveries`` row (with the file's SHA-256, hashed in a thread beside DuckDB's
work) and COMMIT. A crash before the commit leaves the store exactly as it was (DuckDB
discards the uncommitted transaction on reopen).

Because the file is read more than once, it must not change meanwhile: its size, mtime,
inode and ctime are recorded before the first pass and checked again before COMMIT, and the rows
loaded (accepted + duplicate) must equal the valid rows counted by pass 1 (and the
quarantine pass must find exactly the bad rows of pass 1). Otherwise the transaction is rolled
back and the file refused ("the file changed while it was being ingested: deliver it
again"): nothing stored.

Duplicate / replacement rule (also in docs/data-contract.md):

* within one file, the last valid occurrence of an ``event_id`` wins; earlier
  valid occurrences count as ``duplicate``;
* across deliveries, a valid row whose ``event_id`` is already stored replaces
  the stored row (last delivery wins) and counts as ``replaced``; if the stored
  row is identical it is left untouched and counts as ``duplicate``;
* a headcount delivery replaces every stored row of the same customer and
  ``as_of`` month (last occurrence of a group in the file wins).

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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb

from pipeline.ingest.readers import FileRefused, Source, open_source, refusal_for_read_error, sql_string
from pipeline.ingest.rules import (
    VALUE_CHECKED_COLUMNS,
    StagePlan,
    UnknownStructure,
    numbered,
    plan_stage,
    quarantine_select,
)
from privacy.contract import ID_MAX_CHARS, ID_PATTERN, LABEL_MAX_CHARS, LABEL_PATTERN
from privacy.pseudonymise import hmac_sql, hmac_sql_params

TEST_PAUSE_ENV = "WELLBEING_TEST_PAUSE_AFTER_STAGE"
PAUSE_MARKER = "WELLBEING_TEST_PAUSED"

_REFS = "_ingest_refs"  # temp table: (client_ref, customer_id) -> rows, valid rows, hashes of their keys
_IDS = "_ingest_ids"  # temp table: client_ref -> employee (surrogate id), new or already stored
_ID_HIGH_WATER = "employee_id_high_water"  # store_meta key: the highest surrogate id ever given
_LABELS = "_ingest_labels"  # temp table: distinct (customer, site, department, role) of the delivery
_OVERLAP = "_ingest_overlap"  # temp table: stored events with an event_id of this delivery
_EVENT_VALUE_COLUMNS = (
    "customer_id", "employee", "site", "department", "role", "service",
    "occurred_on", "duration_min", "who5_raw", "satisfaction", "topic",
)  # fmt: skip
NOT_THE_FILES_FAULT = (duckdb.OutOfMemoryException, duckdb.InterruptException)
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


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    pseudonym_key: bytes,
    *,
    on_step: Callable[[str], None] | None = None,
    part: str = "",
    sha256: str | None = None,
    staged: str | None = None,
) -> FileReport:
    """Validate, pseudonymise and load one file in one transaction; raises :class:`FileRefused`.

    ``con`` is an open raw-store connection (``USE raw``). Nothing is stored when
    the file is refused. The caller is responsible for the key being the store's
    pseudonym key (:func:`pipeline.ingest.load_pseudonym_key` checks it).
    ``on_step`` hears the name of each pass (progress output; no values). ``part`` (SQL on the
    staged columns, e.g. ``customer_id = 'acme'``) loads only those rows (one customer's shard);
    row numbers stay those of the whole file. ``sha256``: the file's digest when already known.
    ``staged``: a relation holding the file's rows with their file row numbers (a delivery naming
    several customers is read once into an encrypted staging table, sorted by customer; see
    :func:`pipeline.ingest.ingest_split`).
    """
    path = Path(path)
    step = on_step or (lambda _what: None)
    if not path.is_file():
        raise FileRefused(
            path, "file not found or not a regular file: check the path (the other files are still ingested)"
        )
    before = _file_state(path)
    step(f"checking the header ({before[0] / 1e6:.1f} MB)")
    source = open_source(con, path)
    if staged is not None:
        source = replace(source, relation=staged)
    plan = plan_stage(source, part=part, file_row=staged is not None)
    (order_setting,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()  # type: ignore[misc]
    with ThreadPoolExecutor(max_workers=1) as pool:
        con.execute("BEGIN TRANSACTION")
        try:
            report = _passes(con, source, plan, before, pool, pseudonym_key, step, sha256)
            con.execute("COMMIT")
            return report
        except BaseException as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error) and _file_state(path) != before:
                raise _changed(path) from None  # e.g. a later pass met a truncated file
            if isinstance(exc, duckdb.Error) and not isinstance(exc, NOT_THE_FILES_FAULT):
                # A DuckDB message can quote a line of the file or a key value: never pass it on.
                raise FileRefused(
                    path,
                    f"could not be loaded ({type(exc).__name__} in a later pass): "
                    "deliver it again, and report it if it happens again",
                ) from None
            raise
        finally:
            for table in (_REFS, _IDS, _OVERLAP, _LABELS):
                con.execute(f"DROP TABLE IF EXISTS temp.{table}")
            con.execute(f"SET preserve_insertion_order = {bool(order_setting)}")


def _file_state(path: Path) -> tuple[int, int, int, int]:
    """Size, mtime, inode and ctime: a rewrite or a rename-over changes at least one (ctime cannot be set back)."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def _changed(path: Path) -> FileRefused:
    return FileRefused(path, "the file changed while it was being ingested: deliver it again")


def _passes(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    plan: StagePlan,
    before: tuple[int, int, int, int],
    pool: ThreadPoolExecutor,
    pseudonym_key: bytes,
    step: Callable[[str], None],
    sha256: str | None = None,
) -> FileReport:
    """All passes over the file, inside the open transaction; the caller commits."""
    # Aggregates and joins do not need file order; only the numbered passes do (they switch it on).
    con.execute("SET preserve_insertion_order = false")
    key = "event_id" if source.kind == "events" else _HEADCOUNT_KEY
    step("checking every row against the data contract")
    try:  # the first pass meets any read error of the file; later passes read the same bytes
        rows_total, rows_bad, valid, distinct_hashes, customers = _first_pass(con, source, plan, key)
    except NOT_THE_FILES_FAULT:
        raise  # resource problems are not refusals (their messages hold no cell values)
    except duckdb.Error as exc:
        raise refusal_for_read_error(source.path, source.format, exc) from None
    if source.kind == "events":
        unknown = _unknown_structure(con)
        if unknown:  # rare: count again with the headcount rules (literal lists of the few unknown values)
            step("quarantining rows whose customer, site, department or role is not in the headcount")
            plan = plan_stage(source, unknown, plan.part, file_row=plan.file_row)
            rows_total, rows_bad, valid, distinct_hashes, customers = _first_pass(con, source, plan, key)
    if rows_total == 0:
        raise FileRefused(source.path, "the file has a header but no data rows")
    # hashlib releases the GIL: beside DuckDB's work (once per file, not per shard, when given)
    digest = pool.submit(_sha256, source.path) if sha256 is None else pool.submit(str, sha256)
    duplicate = _count_duplicates(con, plan, key, valid, distinct_hashes)
    now = datetime.now(UTC).replace(tzinfo=None)
    (delivery_id,) = con.execute("SELECT coalesce(max(delivery_id), 0) + 1 FROM deliveries").fetchone()  # type: ignore[misc]
    step(f"loading {valid:,} valid rows of {rows_total:,}")
    if source.kind == "events":
        accepted, duplicate, replaced = _load_events(con, plan, delivery_id, now, duplicate, rows_bad, pseudonym_key)
    else:
        accepted, replaced = _load_headcount(con, plan, delivery_id, duplicate)
    _pause_for_tests()
    if rows_bad:
        step(f"recording {rows_bad:,} quarantined rows")
        con.execute("SET preserve_insertion_order = true")
        con.execute(
            f"INSERT INTO quarantine SELECT ?, ?, row_number, column_name, reason, ? FROM ({quarantine_select(plan)})",
            [delivery_id, source.path.name, now],
        )
        (bad_rows,) = con.execute(
            "SELECT count(DISTINCT row_number) FROM quarantine WHERE delivery_id = ?", [delivery_id]
        ).fetchone()  # type: ignore[misc]
        if bad_rows != rows_bad:  # the bad rows of this pass are exactly those of pass 1
            raise _changed(source.path)
    con.execute(
        "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [delivery_id, source.path.name, digest.result(), source.kind, source.format, rows_total,
         accepted, rows_bad, duplicate, replaced, now],
    )  # fmt: skip
    # The passes saw one and the same file: unchanged on disk, and every valid row of pass 1 loaded or counted.
    if _file_state(source.path) != before or accepted + duplicate != valid:
        raise _changed(source.path)
    return FileReport(
        path=source.path, kind=source.kind, rows_total=rows_total, accepted=accepted, quarantined=rows_bad,
        duplicate=duplicate, replaced=replaced, customers=tuple(customers), delivery_id=delivery_id,
        file_format=source.format,
    )  # fmt: skip


def _first_pass(
    con: duckdb.DuckDBPyConnection, source: Source, plan: StagePlan, key: str
) -> tuple[int, int, int, int, list[str]]:
    """Rows, bad rows, valid rows, distinct 64-bit hashes of the valid rows' keys, customers of valid rows.

    For events the same pass keeps, per distinct (client_ref, customer_id), the row counts and the
    list of event_id hashes of its valid rows (8 bytes a row, not the rows) in a temp table: the ids
    are assigned from it, and the hashes counted, without reading the file again.
    """
    if source.kind == "events":
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_REFS} AS SELECT client_ref, customer_id, site, department, role, "
            "count(*) AS n, "
            "count(*) FILTER (WHERE _problems = 0) AS valid, "
            f"list(hash({key})) FILTER (WHERE _problems = 0) AS key_hashes FROM ({plan.rows}) GROUP BY ALL"
        )
        rows_total, valid, customers = con.execute(
            f"SELECT sum(n), sum(valid), list(DISTINCT customer_id) FILTER (WHERE valid > 0) FROM {_REFS}"
        ).fetchone()  # type: ignore[misc]
        # 8 bytes a row; polars counts 10M distinct integers several times faster than DuckDB here
        distinct_hashes = con.execute(f"SELECT unnest(key_hashes) AS h FROM {_REFS}").pl()["h"].n_unique()
    else:
        rows_total, valid, distinct_hashes, customers = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE _problems = 0), "
            f"count(DISTINCT hash({key})) FILTER (WHERE _problems = 0), "
            f"list(DISTINCT customer_id) FILTER (WHERE _problems = 0) FROM ({plan.rows})"
        ).fetchone()  # type: ignore[misc]
    rows_total, valid = int(rows_total or 0), int(valid or 0)
    return rows_total, rows_total - valid, valid, int(distinct_hashes), sorted(customers or ())


def _unknown_structure(con: duckdb.DuckDBPyConnection) -> UnknownStructure:
    """Customers of the delivery without a headcount, site / department / role values not in it,
    and values breaking the character rule of the columns checked per value.

    Read from the first pass's per-person table (distinct values, not rows): its few distinct
    (customer, site, department, role) go to a small temp table first, so each check reads
    only that. The stored headcount counts in every ``as_of`` month (a group that existed at
    some point). Values longer than the contract allows are left out (their rows are bad already).
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_LABELS} AS SELECT DISTINCT customer_id, site, department, role, "
        "EXISTS (SELECT 1 FROM headcount h WHERE h.customer_id = r.customer_id) AS has_headcount "
        f"FROM (SELECT DISTINCT customer_id, site, department, role FROM {_REFS}) r"
    )
    (customers,) = con.execute(
        f"SELECT list(DISTINCT customer_id ORDER BY customer_id) FROM {_LABELS} WHERE customer_id IS NOT NULL "
        f"AND NOT has_headcount AND length(customer_id) <= {ID_MAX_CHARS} "
        f"AND regexp_full_match(customer_id, {sql_string(ID_PATTERN)})"
    ).fetchone()  # type: ignore[misc]
    invalid = []
    for column in sorted(VALUE_CHECKED_COLUMNS):
        pattern, limit = (ID_PATTERN, ID_MAX_CHARS) if column in ("client_ref", "customer_id") else (
            LABEL_PATTERN, LABEL_MAX_CHARS)  # fmt: skip
        table = _REFS if column == "client_ref" else _LABELS
        (bad,) = con.execute(
            f"SELECT list(v ORDER BY v) FROM (SELECT DISTINCT {column} AS v FROM {table} WHERE {column} IS NOT NULL) "
            f"WHERE trim(v) <> '' AND length(v) <= {limit} AND NOT regexp_full_match(v, {sql_string(pattern)})"
        ).fetchone()  # type: ignore[misc]
        invalid.append((column, tuple(bad or ())))
    values = []
    for column in ("site", "department", "role"):
        (keys,) = con.execute(
            f"SELECT list(DISTINCT customer_id || chr(31) || {column} ORDER BY customer_id || chr(31) || {column}) "
            f"FROM {_LABELS} r WHERE has_headcount AND {column} IS NOT NULL AND length({column}) <= {LABEL_MAX_CHARS} "
            f"AND regexp_full_match({column}, {sql_string(LABEL_PATTERN)}) "
            f"AND NOT EXISTS (SELECT 1 FROM headcount h WHERE h.customer_id = r.customer_id AND h.{column} = r.{column})"
        ).fetchone()  # type: ignore[misc]
        values.append((column, tuple(keys or ())))
    return UnknownStructure(customers=tuple(customers or ()), values=tuple(values), invalid=tuple(invalid))


def _assign_employee_ids(con: duckdb.DuckDBPyConnection, key: bytes) -> int:
    """Pseudonymise this delivery's client refs, map them to surrogate ids, store the new people.

    Runs inside the file's transaction, without reading the file again: the DISTINCT client refs
    (not rows) of the valid rows, collected by the first pass, are hashed inside DuckDB
    (:func:`privacy.pseudonymise.hmac_sql`); the map client_ref -> id is a temporary table of this
    connection, dropped after the file, so the client_ref never reaches a stored table. A pseudonym
    already in ``pseudonyms`` keeps its id (same client_ref, same HMAC, same id in every delivery);
    new ones get ``max + 1, ...`` in pseudonym order, which is keyed-random, so the id carries
    nothing of the client_ref. ``max`` is the highest id ever given (``store_meta``), so an id
    freed by retention is never given to another person. Returns the number of new people.
    """
    (base,) = con.execute(
        "SELECT greatest((SELECT coalesce(max(employee), 0) FROM pseudonyms), "
        f"(SELECT coalesce(max(value::BIGINT), 0) FROM store_meta WHERE key = '{_ID_HIGH_WATER}'))"
    ).fetchone()  # type: ignore[misc]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_IDS} AS "
        "SELECT client_ref, pseudonym, known IS NULL AS new, "
        "coalesce(known, $base + row_number() OVER (PARTITION BY known IS NULL ORDER BY pseudonym)) AS employee "
        f"FROM (SELECT r.client_ref, r.pseudonym, p.employee AS known "
        f"FROM (SELECT client_ref, {hmac_sql('client_ref')} AS pseudonym "
        f"FROM (SELECT DISTINCT client_ref FROM {_REFS} WHERE valid > 0)) r "
        "LEFT JOIN pseudonyms p ON p.pseudonym = r.pseudonym)",
        {"base": base, **hmac_sql_params(key)},
    )
    (new,) = con.execute(f"INSERT INTO pseudonyms SELECT employee, pseudonym FROM {_IDS} WHERE new").fetchone()  # type: ignore[misc]
    if new:
        con.execute("INSERT OR REPLACE INTO store_meta VALUES (?, ?)", [_ID_HIGH_WATER, str(int(base) + int(new))])
    return int(new)


def _count_duplicates(
    con: duckdb.DuckDBPyConnection, plan: StagePlan, key: str, valid: int, distinct_hashes: int
) -> int:
    """Valid rows minus distinct keys: the earlier occurrences that the last one supersedes.

    Exact, with a cheap first look (``distinct_hashes``, from the first pass): distinct 64-bit
    hashes of the key are at most the distinct keys, which are at most the rows, so equal counts
    prove there is no duplicate (the usual case) without aggregating millions of strings.
    Otherwise the keys themselves are counted, in a pass over the file of its own.
    """
    if distinct_hashes == valid:
        return 0
    (distinct,) = con.execute(f"SELECT count(DISTINCT ({key})) FROM ({plan.rows}) WHERE _problems = 0").fetchone()  # type: ignore[misc]
    return int(valid - distinct)


def _valid_rows(con: duckdb.DuckDBPyConnection, plan: StagePlan, key: str, duplicate: int, *, mask: bool) -> str:
    """Relation of the valid rows, reduced to the last occurrence of each ``key`` when there are duplicates.

    Without ``mask`` (an event file whose first pass found no bad row) every row is valid and the
    rule mask is not evaluated again (about 1.7 s of 10M CSV rows): the file is the one the first
    pass read, because its size, mtime, inode and ctime are checked again before COMMIT. The
    ctime is the guarantee: any write to the file moves it, and no program can set it back (recent
    Linux kernels even make it fine-grained once it has been read). A program able to change the file
    unseen would be root, and could as well read the keys. Headcount files are small and always
    masked.
    With duplicates the rows are numbered in file order (:func:`pipeline.ingest.rules.numbered`),
    which needs ``preserve_insertion_order``; it is switched on here for the rest of the file.
    """
    columns = ", ".join(f'"{c}"' for c in plan.columns)
    if not duplicate:
        where = " WHERE _problems = 0" if mask else ""
        return f"SELECT {columns} FROM ({plan.rows}){where}"
    con.execute("SET preserve_insertion_order = true")
    return (
        f"SELECT * EXCLUDE (_row) FROM ({numbered(plan)}) WHERE _problems = 0 "
        f"QUALIFY _row = max(_row) OVER (PARTITION BY {key})"
    )


def _load_events(
    con: duckdb.DuckDBPyConnection, plan: StagePlan, delivery_id: int, now: datetime, duplicate: int, bad: int,
    pseudonym_key: bytes,
) -> tuple[int, int, int]:  # fmt: skip
    """Replace / add the valid events (the last occurrence of each event_id), joined with their ids."""
    _assign_employee_ids(con, pseudonym_key)
    new_rows = (
        "SELECT s.event_id, s.customer_id, i.employee, s.site, s.department, s.role, s.service, s.occurred_on, "
        "s.duration_min, s.who5_raw, s.satisfaction, s.topic "
        f"FROM ({_valid_rows(con, plan, 'event_id', duplicate, mask=bool(bad))}) s JOIN {_IDS} i ON i.client_ref = s.client_ref"
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
        f"INSERT INTO events SELECT n.*, ?, ? FROM ({new_rows}) n{skip} ORDER BY n.customer_id, n.occurred_on",
        [delivery_id, now],  # clustered: a customer-month reads only its row groups (pipeline.raw_store)
    ).fetchone()  # type: ignore[misc]
    if duplicate:  # a person seen only in superseded copies has no event: keep no pseudonym for them
        con.execute(
            f"DELETE FROM pseudonyms WHERE employee IN (SELECT employee FROM {_IDS} WHERE new) "
            "AND employee NOT IN (SELECT employee FROM events WHERE delivery_id = ?)",
            [delivery_id],
        )
    return int(accepted), int(duplicate), int(replaced)


def _load_headcount(
    con: duckdb.DuckDBPyConnection, plan: StagePlan, delivery_id: int, duplicate: int
) -> tuple[int, int]:
    """Replace the customer's structure for every (customer, as_of month) in the delivery."""
    (replaced,) = con.execute(
        "DELETE FROM headcount h USING "
        f"(SELECT DISTINCT customer_id, as_of FROM ({plan.rows}) WHERE _problems = 0) n "
        "WHERE h.customer_id = n.customer_id AND h.as_of = n.as_of"
    ).fetchone()  # type: ignore[misc]
    cols = ", ".join(_HEADCOUNT_COLUMNS)
    (accepted,) = con.execute(
        f"INSERT INTO headcount SELECT {cols}, ? FROM ({_valid_rows(con, plan, _HEADCOUNT_KEY, duplicate, mask=True)})",
        [delivery_id],
    ).fetchone()  # type: ignore[misc]
    return int(accepted), int(replaced)


def _pause_for_tests() -> None:
    """Documented test hook: hold the open transaction so a test can SIGKILL the process."""
    seconds = os.environ.get(TEST_PAUSE_ENV)
    if seconds:
        print(PAUSE_MARKER, file=sys.stderr, flush=True)
        time.sleep(float(seconds))
