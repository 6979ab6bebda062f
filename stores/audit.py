"""The dashboards' access audit: an append-only, hash-chained log in ``$WELLBEING_HOME/audit.duckdb``.

Every sign-in, failed or refused sign-in, sign-out, page view and download is one row: when
(UTC), what (``event``), who (``username`` of an account, its ``role`` and ``customer_id``),
which ``page``, and a short ``detail`` (a file name, a reason). Never a data value, never a
password; a typed user name that is not an account is never stored in clear, only as a keyed
hash (``subject_ref``, computed by the caller, who holds the key), so a password typed into the
user-name field does not end up in the log.

Append-only: this module has no update or delete. Each row carries ``prev_hash`` and
``row_hash = sha256(prev_hash ‖ the row's fields)``, so editing, deleting or reordering a row
breaks the chain from there on; :func:`verify` says where. (Cutting rows off the end leaves a
valid shorter chain: compare the last ``seq`` with an exported copy to catch that.)

The same file holds the sign-in throttle (:mod:`stores.throttle`); both use :func:`audit_connection`,
which opens the file for one short transaction (lock conflicts retried, process-wide lock, since
DuckDB shares one instance per file within a process). Page views are written in batches by
:class:`BatchWriter` so that a render never waits for the file.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "audit.duckdb"
>>> append(path, [AccessEvent("sign_in", "hr_acme", "hr", "acme", page="login")])
1
>>> verify(path)
VerifyResult(ok=True, rows=1, first_bad_seq=None, reason='')
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from stores.connect import connect_with_retry
from stores.paths import HomePaths

EVENTS: tuple[str, ...] = (
    "sign_in", "sign_in_failed", "sign_in_locked", "sign_out", "session_resumed", "page_view", "download",
    "not_available",
)  # fmt: skip
GENESIS = "0" * 64
COLUMNS: tuple[str, ...] = ("seq", "occurred_at", "event", "username", "role", "customer_id", "page", "detail", "subject_ref",
                            "prev_hash", "row_hash")  # fmt: skip
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS access_log (
    seq BIGINT PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    event VARCHAR NOT NULL,
    username VARCHAR,
    role VARCHAR,
    customer_id VARCHAR,
    page VARCHAR,
    detail VARCHAR,
    subject_ref VARCHAR,
    prev_hash VARCHAR NOT NULL,
    row_hash VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS signin_throttle (
    kind VARCHAR NOT NULL,
    ref VARCHAR NOT NULL,
    failures INTEGER NOT NULL,
    last_failure TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    PRIMARY KEY (kind, ref)
);
CREATE TABLE IF NOT EXISTS session_revocations (
    username VARCHAR PRIMARY KEY,
    not_before_ms BIGINT NOT NULL
);
"""
MAX_DETAIL = 200

# One writer at a time in this process (DuckDB: one instance per file per process).
_LOCK = threading.RLock()
_SCHEMA_READY: set[tuple[str, int]] = set()


def now_utc() -> datetime:
    """Naive UTC with microseconds, as DuckDB's TIMESTAMP stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class AccessEvent:
    """One audit row before it is chained (no data values: names, roles, pages, reasons only)."""

    event: str
    username: str | None = None
    role: str | None = None
    customer_id: str | None = None
    page: str | None = None
    detail: str | None = None
    subject_ref: str | None = None
    at: datetime = field(default_factory=now_utc)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown audit event {self.event!r}; events are {', '.join(EVENTS)}")
        if self.detail is not None and len(self.detail) > MAX_DETAIL:
            object.__setattr__(self, "detail", self.detail[:MAX_DETAIL])


LOG_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "seq": pl.Int64,
    "occurred_at": pl.Datetime("us"),
    "event": pl.String,
    "username": pl.String,
    "role": pl.String,
    "customer_id": pl.String,
    "page": pl.String,
    "detail": pl.String,
    "subject_ref": pl.String,
    "prev_hash": pl.String,
    "row_hash": pl.String,
}


def _path(store: HomePaths | Path) -> Path:
    return store.audit if isinstance(store, HomePaths) else Path(store)


@contextmanager
def audit_connection(store: HomePaths | Path, *, timeout: float = 5.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the audit file (creating it and its schema) for one short operation, one at a time in this process."""
    path = _path(store)
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = connect_with_retry(lambda: duckdb.connect(str(path)), path, timeout=timeout)
        try:
            stamp = (str(path), path.stat().st_ino)
            if stamp not in _SCHEMA_READY:  # once per file per process (a new file gets it again)
                con.execute(SCHEMA_SQL)
                _SCHEMA_READY.add(stamp)
            try:
                yield con
            except duckdb.CatalogException:
                _SCHEMA_READY.discard(stamp)  # the file was replaced under us: create the schema next time
                raise
        finally:
            con.close()


def _fields(seq: int, at: datetime, e: AccessEvent | tuple) -> list[str]:
    if isinstance(e, AccessEvent):
        values = (e.event, e.username, e.role, e.customer_id, e.page, e.detail, e.subject_ref)
    else:
        values = tuple(e)
    return [str(seq), at.isoformat(timespec="microseconds"), *("" if v is None else f"={v}" for v in values)]


def row_hash(prev_hash: str, seq: int, at: datetime, e: AccessEvent | tuple) -> str:
    """sha256 of the previous hash and the row's fields (unit-separated; NULL and "" hash differently)."""
    payload = "\x1f".join([prev_hash, *_fields(seq, at, e)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append_on(con: duckdb.DuckDBPyConnection, events: Iterable[AccessEvent]) -> int:
    """Append ``events`` on an open audit connection, in one transaction; returns the last ``seq``."""
    events = list(events)
    con.execute("BEGIN TRANSACTION")
    try:
        last = con.execute("SELECT seq, row_hash FROM access_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        rows = []
        for e in events:
            seq += 1
            at = e.at.replace(tzinfo=None) if e.at.tzinfo is None else e.at.astimezone(UTC).replace(tzinfo=None)
            h = row_hash(prev, seq, at, e)
            rows.append((seq, at, e.event, e.username, e.role, e.customer_id, e.page, e.detail, e.subject_ref, prev, h))
            prev = h
        if rows:
            con.executemany(
                f"INSERT INTO access_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return seq


def append(store: HomePaths | Path, events: Iterable[AccessEvent]) -> int:
    """Append ``events`` (one short transaction); returns the last ``seq``."""
    with audit_connection(store) as con:
        return append_on(con, events)


def read(
    store: HomePaths | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    events: Iterable[str] | None = None,
    username: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """The log, oldest first (filters optional). An absent file is an empty log."""
    if not _path(store).exists():
        return pl.DataFrame(schema=LOG_SCHEMA)
    with audit_connection(store) as con:
        return read_on(con, since=since, until=until, events=events, username=username, limit=limit)


def read_on(
    con: duckdb.DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    events: Iterable[str] | None = None,
    username: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """:func:`read` on an open audit connection (several reads and a flush share one open)."""
    schema = LOG_SCHEMA
    clauses: list[str] = []
    params: list[object] = []
    if since is not None:
        clauses.append("occurred_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("occurred_at < ?")
        params.append(until)
    if events:
        clauses.append("event IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(events))
    if username:
        clauses.append("username = ?")
        params.append(username)
    sql = f"SELECT {', '.join(COLUMNS)} FROM access_log"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY seq"
    if limit:
        sql = f"SELECT * FROM ({sql.replace(' ORDER BY seq', ' ORDER BY seq DESC')} LIMIT {int(limit)}) ORDER BY seq"
    frame = con.execute(sql, params).pl()
    return frame if not frame.is_empty() else pl.DataFrame(schema=schema)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify(store: HomePaths | Path) -> VerifyResult:
    """Recompute the chain from the first row: where it breaks, and why (edited, deleted or reordered rows)."""
    path = _path(store)
    if not path.exists():
        return VerifyResult(True, 0)
    with audit_connection(store) as con:
        return verify_on(con)


def verify_on(con: duckdb.DuckDBPyConnection) -> VerifyResult:
    """:func:`verify` on an open audit connection."""
    rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM access_log ORDER BY seq").fetchall()
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        seq, at, *values, prev_hash, h = row
        if seq != expected_seq:
            return VerifyResult(False, len(rows), int(seq), f"row {expected_seq} is missing (sequence jumps to {seq})")
        if prev_hash != prev:
            return VerifyResult(
                False, len(rows), int(seq), "the previous-row hash does not match (row removed or moved)"
            )
        if row_hash(prev, int(seq), at, tuple(values)) != h:
            return VerifyResult(False, len(rows), int(seq), "the row's content does not match its hash (row edited)")
        prev = h
    return VerifyResult(True, len(rows))


class BatchWriter:
    """Buffers events in memory and appends them every ``interval`` seconds on one background thread.

    A render only puts an event in a list (no file access). :meth:`flush` writes what is buffered
    now (also called at exit). If a write fails (file busy for longer than the retry window), the
    events stay buffered and the next flush tries again.
    """

    def __init__(self, store: HomePaths | Path, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval
        self._buffer: list[AccessEvent] = []
        self._buffer_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.failures = 0
        atexit.register(self.close)

    def record(self, event: AccessEvent) -> None:
        with self._buffer_lock:
            self._buffer.append(event)
            if not self._stop.is_set() and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def flush(self, con: duckdb.DuckDBPyConnection | None = None) -> int:
        """Write every buffered event now (on ``con`` if given); returns how many were written."""
        with self._buffer_lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return 0
        try:
            if con is None:
                append(self.store, batch)
            else:
                append_on(con, batch)
        except Exception:
            self.failures += 1
            with self._buffer_lock:
                self._buffer[:0] = batch
            return 0
        return len(batch)

    def close(self) -> None:
        """Stop the background thread (never killed inside a DuckDB call at exit) and write what is left."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while True:
            if self._stop.wait(self.interval):
                return
            self.flush()
            with self._buffer_lock:
                if not self._buffer:  # idle: end; the next record() starts a new thread
                    self._thread = None
                    return
