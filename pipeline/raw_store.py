"""The encrypted raw store: the only place individual records live.

Opened only by the pipeline, with DuckDB's ``ENCRYPTION_KEY``. The httpfs extension
(shipped in the ``duckdb-extension-httpfs`` wheel) must be loaded for DuckDB to
*write* encrypted files securely; we never fall back to the unsafe crypto module.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from pipeline.keys import RAW_KEY_ENV, load_or_create_key
from pipeline.settings import Settings

RAW_SCHEMA_VERSION = 1

RAW_DDL = """
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
CREATE TABLE IF NOT EXISTS events (
    event_id      VARCHAR NOT NULL,
    customer_id   VARCHAR NOT NULL,
    employee      VARCHAR NOT NULL,         -- HMAC-SHA256(pseudonym key, client_ref), hex
    site          VARCHAR,
    department    VARCHAR NOT NULL,
    role          VARCHAR,
    service       VARCHAR NOT NULL,
    occurred_on   DATE NOT NULL,
    duration_min  SMALLINT,
    who5_raw      TINYINT,
    satisfaction  TINYINT,
    topic         VARCHAR,
    delivery_id   BIGINT NOT NULL,
    ingested_at   TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    delivery_id   BIGINT NOT NULL,
    file_name     VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL,          -- 1-based data row (header excluded)
    column_name   VARCHAR,
    reason        VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS headcount (
    customer_id   VARCHAR NOT NULL,
    site          VARCHAR NOT NULL,
    department    VARCHAR NOT NULL,
    role          VARCHAR,
    headcount     INTEGER NOT NULL,
    as_of         DATE NOT NULL,            -- first day of the month
    delivery_id   BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
"""


class RawStoreError(RuntimeError):
    """The raw store cannot be opened (missing or wrong key, lock held by another process...)."""


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
    """Open the encrypted raw store as the default database ``raw`` and make sure its schema exists.

    A new store (and its key) is created on first use; an existing store opened
    without its key, or with the wrong key, raises :class:`RawStoreError` and
    changes nothing. DuckDB allows one writing process and even a read-only reader
    blocks a writer, so a held lock is retried for ``lock_timeout`` seconds.
    """
    path: Path = settings.raw_path
    exists = path.exists()
    if read_only and not exists:
        raise RawStoreError(f"raw store {path} does not exist yet: ingest a file first (wellbeing ingest FILE)")
    settings.ensure_dirs()
    try:
        key = raw_key(settings, create=not exists)
    except Exception as exc:  # KeyError_ carries the actionable text
        raise RawStoreError(str(exc)) from None
    con = duckdb.connect(config={"threads": "2"})
    try:
        load_httpfs(con)
        _attach_with_retry(con, path, key, read_only=read_only, timeout=lock_timeout)
        con.execute("USE raw")
        # Whatever DuckDB spills while working on individual records is encrypted and stays
        # inside WELLBEING_HOME (so retention and key handling cover it), never in ./.tmp.
        con.execute("SET temp_file_encryption = true")
        con.execute("SET temp_directory = ?", [str(settings.home / "tmp")])
        if not read_only:
            con.execute(RAW_DDL)
            con.execute(
                "INSERT OR IGNORE INTO store_meta VALUES ('schema_version', ?)", [str(RAW_SCHEMA_VERSION)]
            )
    except duckdb.Error as exc:
        con.close()
        raise RawStoreError(_explain(exc, path)) from None
    return con


def _attach_with_retry(
    con: duckdb.DuckDBPyConnection, path: Path, key: str, *, read_only: bool, timeout: float
) -> None:
    options = "ENCRYPTION_KEY $key" + (", READ_ONLY" if read_only else "")
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            con.execute(f"ATTACH '{_sql_path(path)}' AS raw ({options})", {"key": key})
            return
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


@contextmanager
def raw_connection(settings: Settings, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Context manager around :func:`connect_raw` that always closes the connection."""
    con = connect_raw(settings, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _explain(exc: duckdb.Error, path: Path) -> str:
    text = str(exc)
    if "Wrong encryption key" in text:
        return (
            f"wrong key for the raw store {path}: set {RAW_KEY_ENV} to the key it was created with "
            f"or restore {path.parent / 'keys' / 'raw.key'}; nothing was changed"
        )
    if "without a key" in text:
        return f"the raw store {path} is encrypted and no key was given; nothing was changed"
    if "lock" in text.lower():
        return f"the raw store {path} is in use by another process (only one pipeline writer at a time): {text}"
    # Never echo SQL or values: the message names the file and the DuckDB error class only.
    return f"cannot open the raw store {path}: {type(exc).__name__}: {text.splitlines()[0][:200]}"
