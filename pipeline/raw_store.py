"""The encrypted raw store: the only place individual records live.

One encrypted DuckDB file per customer (a *shard*) plus an encrypted catalog
(:mod:`pipeline.shards`); this module opens one such file (:func:`open_encrypted`) with the
raw schema, and keeps the legacy single store (``raw.duckdb``) readable for its migration.
Opened only by the pipeline, with DuckDB's ``ENCRYPTION_KEY``. The httpfs extension
(shipped in the ``duckdb-extension-httpfs`` wheel) must be loaded for DuckDB to
*write* encrypted files securely; we never fall back to the unsafe crypto module.

The schema version is kept in ``store_meta``; the first write connection to an older
store migrates it in one transaction (:func:`ensure_schema`), and a store written by
newer code is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipeline.keys import RAW_KEY_ENV, load_or_create_key
from pipeline.settings import Settings
from privacy.contract import INPUT_RELATIONS_DDL
from stores.connect import StoreBusy, connect_with_retry

RAW_SCHEMA_VERSION = 2

# Schema v2: ``events.employee`` is a small integer surrogate id; the keyed HMAC pseudonym it
# stands for lives once per person in ``pseudonyms`` (v1 stored the 64-char hex on every event).
# ``events`` and ``headcount`` are the privacy library's input relations: their DDL is
# ``privacy.contract.INPUT_RELATIONS_DDL``; the other tables are the pipeline's own.
RAW_DDL = (
    INPUT_RELATIONS_DDL
    + """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id      BIGINT PRIMARY KEY,
    file_name        VARCHAR NOT NULL,
    file_sha256      VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,      -- 'events' | 'headcount'
    file_format      VARCHAR NOT NULL,      -- 'csv' | 'parquet' | 'jsonl'
    rows_total       BIGINT NOT NULL,
    rows_accepted    BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_duplicate   BIGINT NOT NULL,
    rows_replaced    BIGINT NOT NULL,
    ingested_at      TIMESTAMP NOT NULL
);
-- One row per pseudonymised person. The provider's client_ref is never stored: only its keyed
-- HMAC (privacy.pseudonymise, key separate from the database key). ``employee`` is a surrogate id
-- assigned at ingest (highest id ever given + 1, ..., in pseudonym order, so it carries nothing of the client_ref);
-- a later delivery of the same client_ref gives the same HMAC and so the same id. Rows no event
-- references any more are deleted by retention (pipeline.retention).
-- ``pseudonym`` is unique by construction (ingest inserts only pseudonyms not yet stored, one per
-- distinct client_ref) and tested; it has no UNIQUE index on purpose: DuckDB's ART index on
-- 64-char strings added ~330 MB to the file and ~4 s to every large delivery (1.3M people).
CREATE TABLE IF NOT EXISTS pseudonyms (
    employee      BIGINT PRIMARY KEY,       -- surrogate id, referenced by events.employee
    pseudonym     VARCHAR NOT NULL          -- HMAC-SHA256(pseudonym key, client_ref), hex; unique
);
CREATE TABLE IF NOT EXISTS quarantine (
    delivery_id   BIGINT NOT NULL,
    file_name     VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL,          -- 1-based data row (header excluded)
    column_name   VARCHAR,
    reason        VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
"""
)


class RawStoreError(RuntimeError):
    """The raw store cannot be opened (missing or wrong key, lock held by another process...)."""


class RawStoreKeyError(RawStoreError):
    """A key is missing, wrong, or its file or folder is open to others (bad input: exit code 2)."""


class RawStoreBusy(RawStoreError, StoreBusy):
    """Another process held the raw store for longer than the retry window; nothing was changed."""

    def __init__(self, path: Path, timeout: float, name: str = "the raw store") -> None:
        StoreBusy.__init__(self, path, timeout)
        RuntimeError.__init__(
            self,
            f"{name} {path} is in use by another process (only one pipeline writer at a time) "
            f"for more than {timeout:.0f} s; nothing was changed: retry when it has finished",
        )


def rotation_pending(settings: Settings) -> bool:
    """Whether ``wellbeing keys rotate`` left its next key behind (interrupted; run it again)."""
    return settings.raw_key_file.with_name(settings.raw_key_file.name + ".next").exists()


def raw_key(settings: Settings, *, create: bool) -> str:
    """The raw store's encryption key (created with the store, never afterwards)."""
    return load_or_create_key(RAW_KEY_ENV, settings.raw_key_file, create=create)


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs from its wheel so DuckDB uses the secure crypto module for writes."""
    from duckdb_extensions import import_extension

    import_extension("httpfs", con=con)
    con.execute("LOAD httpfs")


LOCK_RETRY_SECONDS = 15.0


def connect_raw(
    settings: Settings, *, read_only: bool = False, lock_timeout: float = LOCK_RETRY_SECONDS
) -> duckdb.DuckDBPyConnection:
    """A read view over the catalog and every customer shard (admin commands and tests only).

    Individual records live in per-customer shards (:mod:`pipeline.shards`); this opens all of
    them read-only and exposes each raw table as a view (``UNION ALL`` over the shards). It is
    not for the hot paths (ingest and releases open only the shard they need). A legacy single
    store is migrated into shards first. ``read_only`` is accepted for compatibility: the view
    never writes.
    """
    from pipeline.shards import connect_combined

    return connect_combined(settings, lock_timeout=lock_timeout, create=not read_only)


def open_encrypted(
    settings: Settings,
    path: Path,
    key: str,
    *,
    read_only: bool = False,
    lock_timeout: float = LOCK_RETRY_SECONDS,
    name: str = "the raw store",
    schema: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open one encrypted store file as the default database ``raw``.

    A new file is created when it does not exist (unless ``read_only``); an existing one opened
    with the wrong key raises :class:`RawStoreKeyError` and changes nothing. DuckDB allows one
    writing process and even a read-only reader blocks a writer, so a held lock is retried for
    ``lock_timeout`` seconds (then :class:`RawStoreBusy`). ``schema`` runs on a write connection.
    """
    if read_only and not path.exists():
        raise RawStoreError(f"{name} {path} does not exist yet: ingest a file first (wellbeing ingest FILE)")
    settings.ensure_dirs()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": "2"})
    try:
        load_httpfs(con)
        try:
            _attach_with_retry(con, path, key, read_only=read_only, timeout=lock_timeout)
        except StoreBusy as exc:
            raise RawStoreBusy(path, exc.timeout, name=name) from None
        con.execute("USE raw")
        # Whatever DuckDB spills while working on individual records is encrypted and stays
        # inside WELLBEING_HOME (so retention and key handling cover it), never in ./.tmp.
        con.execute("SET temp_file_encryption = true")
        con.execute("SET temp_directory = ?", [str(settings.tmp_dir)])
        if not read_only:
            ensure_schema(con)
            if schema is not None:
                schema(con)
    except RawStoreError:
        con.close()
        raise
    except duckdb.Error as exc:
        con.close()
        key_problem = "encryption key" in str(exc) or "without a key" in str(exc)
        raise (RawStoreKeyError if key_problem else RawStoreError)(_explain(exc, path, settings, name)) from None
    except BaseException:
        con.close()
        raise
    return con


def connect_legacy(
    settings: Settings, *, read_only: bool = False, lock_timeout: float = LOCK_RETRY_SECONDS
) -> duckdb.DuckDBPyConnection:
    """The legacy single raw store (``raw.duckdb``), for its one-time migration into shards."""
    try:
        key = raw_key(settings, create=not settings.raw_path.exists())
    except Exception as exc:  # KeyError_ carries the actionable text
        raise RawStoreKeyError(str(exc)) from None
    return open_encrypted(settings, settings.raw_path, key, read_only=read_only, lock_timeout=lock_timeout)


def stored_schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version recorded in the open store (``None`` for a new, empty store)."""
    (has_meta,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = 'store_meta'"
    ).fetchone()  # type: ignore[misc]
    if not has_meta:
        return None
    row = con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else int(row[0])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schema of a new store, or migrate an older store to :data:`RAW_SCHEMA_VERSION`.

    One transaction: a crash or error mid-migration leaves the store exactly as it was
    (still at its old version, migrated again on the next write open). A store written by
    newer code is refused rather than guessed at.
    """
    version = stored_schema_version(con)
    if version is not None and version > RAW_SCHEMA_VERSION:
        raise RawStoreError(
            f"the raw store has schema version {version} but this code knows version {RAW_SCHEMA_VERSION}: "
            "upgrade wellbeing to the version that wrote it; nothing was changed"
        )
    if version == RAW_SCHEMA_VERSION:
        con.execute(RAW_DDL)  # idempotent (IF NOT EXISTS); no write when nothing is missing
        _ensure_clustered(con)
        return
    con.execute("BEGIN TRANSACTION")
    try:
        if version == 1:
            _migrate_v1_to_v2(con)
        else:
            con.execute(RAW_DDL)
        con.execute("INSERT OR REPLACE INTO store_meta VALUES ('schema_version', ?)", [str(RAW_SCHEMA_VERSION)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if version is not None:
        con.execute("CHECKPOINT")  # the old table's blocks leave the file's live data now, not at some later write
    _ensure_clustered(con)


# Physical order of ``events`` (issue 12). Every delivery is inserted ordered by (customer_id,
# occurred_on) (pipeline.ingest.load), so DuckDB's per-row-group min/max lets a customer-month's
# reduction skip the row groups of other customers and months, whatever order the export came in.
# A store written before that is rewritten once, in this order, by its first write connection.
EVENTS_LAYOUT_KEY = "events_layout"
EVENTS_LAYOUT = "clustered:customer_id,occurred_on"


def _ensure_clustered(con: duckdb.DuckDBPyConnection) -> None:
    """Rewrite ``events`` ordered by (customer_id, occurred_on) once, if the store predates the layout.

    One transaction (the row count is checked before the old table is dropped): a crash leaves
    the store as it was, rewritten again by the next write connection. A new store is marked at
    once (it has no events to order).
    """
    row = con.execute("SELECT value FROM store_meta WHERE key = ?", [EVENTS_LAYOUT_KEY]).fetchone()
    if row is not None and row[0] == EVENTS_LAYOUT:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        (stored,) = con.execute("SELECT count(*) FROM events").fetchone()  # type: ignore[misc]
        if stored:
            con.execute("ALTER TABLE events RENAME TO _events_unclustered")
            con.execute(INPUT_RELATIONS_DDL)  # the events table again, empty (IF NOT EXISTS for the others)
            (moved,) = con.execute(
                "INSERT INTO events SELECT * FROM _events_unclustered ORDER BY customer_id, occurred_on"
            ).fetchone()  # type: ignore[misc]
            if moved != stored:  # cannot happen; never drop data on a surprise
                raise RawStoreError(f"reordering the events moved {moved} of {stored} rows; nothing was changed")
            con.execute("DROP TABLE _events_unclustered")
        con.execute("INSERT OR REPLACE INTO store_meta VALUES (?, ?)", [EVENTS_LAYOUT_KEY, EVENTS_LAYOUT])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if stored:
        con.execute("CHECKPOINT")


def _migrate_v1_to_v2(con: duckdb.DuckDBPyConnection) -> None:
    """v1 stored the hex HMAC on every event; v2 stores it once in ``pseudonyms`` and an id on events.

    Runs inside the caller's transaction. Ids are assigned in pseudonym (HMAC) order, like
    ingest does for new people; the row count is checked before the old table is dropped.
    """
    con.execute("ALTER TABLE events RENAME TO _events_v1")
    con.execute(RAW_DDL)  # creates pseudonyms and the v2 events table
    con.execute(
        "INSERT INTO pseudonyms SELECT row_number() OVER (ORDER BY employee), employee "
        "FROM (SELECT DISTINCT employee FROM _events_v1)"
    )
    (moved,) = con.execute(
        "INSERT INTO events SELECT e.* REPLACE (p.employee AS employee) "
        "FROM _events_v1 e JOIN pseudonyms p ON p.pseudonym = e.employee"
    ).fetchone()  # type: ignore[misc]
    (before,) = con.execute("SELECT count(*) FROM _events_v1").fetchone()  # type: ignore[misc]
    if moved != before:  # cannot happen (every v1 employee got a pseudonyms row); never drop data on a surprise
        raise RawStoreError(f"schema migration v1 -> v2 moved {moved} of {before} events; nothing was changed")
    con.execute("DROP TABLE _events_v1")


def _attach_with_retry(
    con: duckdb.DuckDBPyConnection, path: Path, key: str, *, read_only: bool, timeout: float
) -> None:
    """ATTACH the encrypted file as ``raw`` (the key as a prepared parameter, never in the SQL text)."""
    options = "ENCRYPTION_KEY $key" + (", READ_ONLY" if read_only else "")
    connect_with_retry(
        lambda: con.execute(f"ATTACH '{_sql_path(path)}' AS raw ({options})", {"key": key}), path, timeout=timeout
    )


@contextmanager
def raw_connection(settings: Settings, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Context manager around :func:`connect_raw` (the read view over all shards); always closes it."""
    con = connect_raw(settings, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _explain(exc: duckdb.Error, path: Path, settings: Settings, name: str = "the raw store") -> str:
    text = str(exc)
    if "Wrong encryption key" in text:
        if rotation_pending(settings):
            return (
                f"a key rotation of {name} {path} was interrupted: run `wellbeing keys rotate` to finish it "
                "(nothing is lost)"
            )
        return (
            f"wrong key for {name} {path}: set {RAW_KEY_ENV} to the key it was created with "
            f"or restore {settings.raw_key_file} (a customer shard also needs its key share in "
            f"{settings.customer_keys_dir}); nothing was changed"
        )
    if "without a key" in text:
        return f"{name} {path} is encrypted and no key was given; nothing was changed"
    if "lock" in text.lower():
        return f"{name} {path} is in use by another process (only one pipeline writer at a time): {text}"
    # Never echo SQL or values: the message names the file and the DuckDB error class only.
    return f"cannot open {name} {path}: {type(exc).__name__}: {text.splitlines()[0][:200]}"
