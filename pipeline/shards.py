"""Per-customer encrypted shards: each customer's raw data in its own file under its own key.

Layout (``$WELLBEING_HOME``):

* ``shards/<shard_id>.duckdb`` – one customer's events, pseudonyms, quarantine rows of its
  records, headcount, its deliveries (the part of each file that named it), stored release
  draws and its authoritative budget ledger. ``shard_id`` is random (``secrets.token_hex``):
  a file name never names a customer.
* ``shards/catalog.duckdb`` – encrypted with the master key (``raw.key`` /
  ``WELLBEING_RAW_KEY``): customer -> shard id, created / removed, the removal log, the
  file-level deliveries (one row per delivered file) and the quarantine rows that have no
  valid customer (row number, column, reason: never values); the pseudonym key's check.
* ``keys/customers/<shard_id>.key`` – the customer's random 32-byte key share (0600 in the
  0700 key folder; ``$WELLBEING_KEY_DIR`` moves it with the other keys).

A shard's key is ``HMAC-SHA256(master key, "wellbeing-shard-key-v1" | shard_id | share)``:
the master key alone opens no shard, and destroying the share (``wellbeing customer remove``)
makes the shard unrecoverable even to someone holding the master key and a backup of the file
(crypto-shredding).

Every shard opens as the DuckDB database ``raw`` with the same schema as the legacy single
store (:data:`pipeline.raw_store.RAW_DDL` + release tables), so the ingest, release and
retention SQL run unchanged on one customer. The catalog is opened only for short reads and
writes (retried on a lock with :func:`stores.connect.connect_with_retry`), never held during a
load, so ingests and releases of different customers run side by side in separate processes.

A legacy ``raw.duckdb`` is moved into shards once (:func:`migrate_legacy`): pseudonyms and
surrogate ids copied as they are, every ledger row and stored draw copied, row counts verified
per table per customer before the legacy file is deleted; an interrupted migration is re-run.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.keys import fsync_path, make_private_dir, read_key_file, write_key_file
from pipeline.raw_store import (
    LOCK_RETRY_SECONDS,
    RawStoreBusy,
    RawStoreError,
    RawStoreKeyError,
    _attach_with_retry,
    _sql_path,
    connect_legacy,
    load_httpfs,
    open_encrypted,
    raw_key,
)
from pipeline.releases.release_store import ensure_release_schema, has_release_tables
from pipeline.settings import Settings
from pipeline.shard_storage import delete as delete_object
from pipeline.shard_storage import fetch, upload
from stores.connect import StoreBusy

CATALOG_DDL = """
CREATE TABLE IF NOT EXISTS customers (
    customer_id    VARCHAR PRIMARY KEY,
    shard_id       VARCHAR NOT NULL UNIQUE,
    created_at     TIMESTAMP NOT NULL,
    first_snapshot DATE,                 -- first headcount month (public structure), for the month partitions
    removed_at     TIMESTAMP,
    removed_by     VARCHAR
);
-- Who removed which customer when (no data): the shard file and its key share are gone.
CREATE TABLE IF NOT EXISTS customer_removals (
    removed_at  TIMESTAMP NOT NULL,
    removed_by  VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    shard_id    VARCHAR NOT NULL
);
"""
_KEY_CONTEXT = b"wellbeing-shard-key-v1"
CATALOG_NAME = "the raw store's catalog"
LEGACY_MIGRATED_KEY = "migrated_from_legacy"  # store_meta of a shard (and of the catalog when done)


class ShardError(RawStoreError):
    """One customer's shard cannot be opened (corrupt, key share missing, ...); other customers are fine."""


class UnknownCustomer(RawStoreError):
    """The catalog has no (live) shard for this customer (bad input: exit code 2)."""


@dataclass(frozen=True)
class Shard:
    """A live customer shard from the catalog."""

    customer_id: str
    shard_id: str
    created_at: datetime


def derive_shard_key(master: str, shard_id: str, share: str) -> str:
    """The shard's DuckDB key: HMAC-SHA256(master key, context | shard id | share), hex."""
    message = b"\x00".join((_KEY_CONTEXT, shard_id.encode("ascii"), share.encode("ascii")))
    return hmac.new(master.encode("ascii"), message, hashlib.sha256).hexdigest()


def _master(settings: Settings, *, create: bool) -> str:
    try:
        return raw_key(settings, create=create)
    except Exception as exc:  # KeyError_ carries the actionable text
        raise RawStoreKeyError(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# Catalog


def connect_catalog(
    settings: Settings, *, read_only: bool = False, lock_timeout: float = LOCK_RETRY_SECONDS, fetched: bool = False
) -> duckdb.DuckDBPyConnection:
    """The encrypted catalog as database ``raw`` (short-lived: close it as soon as possible).

    With a shard bucket the local copy is made current first (unless the caller just ``fetched``
    it); :func:`catalog_connection` uploads what a write connection committed.
    """
    if not fetched:
        fetch(settings, settings.catalog_path, name=CATALOG_NAME)
    exists = settings.catalog_path.exists()
    if read_only and not exists:
        raise RawStoreError(
            f"the raw store {settings.shards_dir} does not exist yet: ingest a file first (wellbeing ingest FILE)"
        )
    key = _master(settings, create=not exists and not settings.raw_path.exists())

    def schema(con: duckdb.DuckDBPyConnection) -> None:
        ensure_release_schema(con)  # always empty in the catalog; keeps the read view's tables uniform
        con.execute(CATALOG_DDL)

    return open_encrypted(
        settings, settings.catalog_path, key, read_only=read_only, lock_timeout=lock_timeout,
        name=CATALOG_NAME, schema=schema,
    )  # fmt: skip


@contextmanager
def catalog_connection(settings: Settings, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The catalog, closed on exit; a write connection's commits are uploaded to the shard bucket (if any)."""
    con = connect_catalog(settings, read_only=read_only)
    try:
        yield con
        if not read_only:
            upload(settings, settings.catalog_path, name=CATALOG_NAME, con=con)
    finally:
        con.close()


@contextmanager
def catalog_if_any(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The catalog read-only, or ``None`` before the first ingest (one fetch from a shard bucket)."""
    if not catalog_exists(settings):
        yield None
        return
    con = connect_catalog(settings, read_only=True, fetched=True)
    try:
        yield con
    finally:
        con.close()


def catalog_exists(settings: Settings) -> bool:
    """Whether the catalog exists (its current version fetched from the shard bucket, if any)."""
    fetch(settings, settings.catalog_path, name=CATALOG_NAME)
    return settings.catalog_path.exists()


def store_exists(settings: Settings) -> bool:
    """Whether anything was ingested yet (the catalog, or a legacy single store still to migrate)."""
    return catalog_exists(settings) or settings.raw_path.exists()


def ledger(settings: Settings, customer_id: str | None = None) -> list[tuple[str, str, float]]:
    """(customer, period, rho) of the authoritative ledger: one customer's shard, or each shard in turn."""
    out: list[tuple[str, str, float]] = []
    for shard in live_shards(settings):
        if customer_id is not None and shard.customer_id != customer_id:
            continue
        con = open_shard(settings, shard, read_only=True)
        try:
            if has_release_tables(con):
                out += [
                    (c, p, float(r))
                    for c, p, r in con.execute(
                        "SELECT customer_id, period, rho FROM budget_ledger ORDER BY entry_id"
                    ).fetchall()
                ]
        finally:
            con.close()
    return out


def live_shards(settings: Settings) -> list[Shard]:
    """Customers with a live shard, by customer id (empty before the first ingest)."""
    ensure_migrated(settings)
    with catalog_if_any(settings) as con:
        return [] if con is None else _live(con)


def _live(con: duckdb.DuckDBPyConnection) -> list[Shard]:
    rows = con.execute(
        "SELECT customer_id, shard_id, created_at FROM customers WHERE removed_at IS NULL ORDER BY customer_id"
    ).fetchall()
    return [Shard(*r) for r in rows]


def customers(settings: Settings) -> list[str]:
    """Customer ids with a live shard (names of employers, not of people)."""
    return [s.customer_id for s in live_shards(settings)]


def live_and_removed_customers(settings: Settings) -> tuple[list[str], list[str]]:
    """Customers with a live shard, and customers removed (crypto-shredded) and not re-created since
    (their partitions can go), in one catalog read."""
    ensure_migrated(settings)
    with catalog_if_any(settings) as con:
        if con is None:
            return [], []
        live = [s.customer_id for s in _live(con)]
        rows = con.execute("SELECT customer_id FROM customers WHERE removed_at IS NOT NULL").fetchall()
    return live, sorted({str(r[0]) for r in rows} - set(live))


def find_shard(settings: Settings, customer_id: str) -> Shard:
    for shard in live_shards(settings):
        if shard.customer_id == customer_id:
            return shard
    raise UnknownCustomer(f"unknown customer {customer_id!r}: no shard in the catalog (wellbeing customer list)")


def ensure_shards(settings: Settings, customer_ids: list[str]) -> dict[str, Shard]:
    """The live shard of each customer, created (key share + catalog row) when missing; one short catalog write."""
    ensure_migrated(settings)
    with catalog_connection(settings) as con:
        return _ensure_in(settings, con, customer_ids)


def _ensure_in(settings: Settings, con: duckdb.DuckDBPyConnection, customer_ids: list[str]) -> dict[str, Shard]:
    live = {s.customer_id: s for s in _live(con)}
    out: dict[str, Shard] = {}
    for customer in customer_ids:
        if customer in live:
            out[customer] = live[customer]
            continue
        shard_id = secrets.token_hex(16)
        make_private_dir(settings.customer_keys_dir)
        write_key_file(settings.customer_key_file(shard_id), secrets.token_hex(32))  # flushed before the row
        now = datetime.now(UTC).replace(tzinfo=None)
        con.execute(
            "INSERT INTO customers (customer_id, shard_id, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (customer_id) DO UPDATE SET shard_id = excluded.shard_id, created_at = excluded.created_at, "
            "first_snapshot = NULL, removed_at = NULL, removed_by = NULL",
            [customer, shard_id, now],
        )  # a removed customer delivered again starts a new, empty shard
        out[customer] = Shard(customer, shard_id, now)
    return out


# ---------------------------------------------------------------------------------------------
# Shards


def shard_key(settings: Settings, shard: Shard) -> str:
    share_file = settings.customer_key_file(shard.shard_id)
    if not share_file.exists():
        raise ShardError(
            f"the key share of customer {shard.customer_id} (shard {shard.shard_id}) is missing: restore "
            f"{share_file} from your key backup; other customers are not affected"
        )
    try:
        share = read_key_file(share_file)
    except Exception as exc:
        raise RawStoreKeyError(f"customer {shard.customer_id}: {exc}") from None
    return derive_shard_key(_master(settings, create=False), shard.shard_id, share)


def shard_name(shard: Shard) -> str:
    """How messages name a shard: the customer (an employer) and the random shard id, never data."""
    return f"the shard of customer {shard.customer_id} ({shard.shard_id})"


def upload_shard(settings: Settings, shard: Shard, con: duckdb.DuckDBPyConnection) -> None:
    """After a commit on ``con`` (the open shard): upload it to the shard bucket (no-op without one)."""
    upload(settings, settings.shard_path(shard.shard_id), name=shard_name(shard), con=con)


def _shard_schema(con: duckdb.DuckDBPyConnection) -> None:
    ensure_release_schema(con)


def open_shard(
    settings: Settings, shard: Shard, *, read_only: bool = False, lock_timeout: float = LOCK_RETRY_SECONDS
) -> duckdb.DuckDBPyConnection:
    """One customer's shard as database ``raw``. Errors name the customer and the shard, never data."""
    path = settings.shard_path(shard.shard_id)
    key = shard_key(settings, shard)
    name = shard_name(shard)
    fetch(settings, path, name=name)  # with a shard bucket: its current version, into the local cache
    try:
        return open_encrypted(
            settings, path, key, read_only=read_only, lock_timeout=lock_timeout, name=name, schema=_shard_schema
        )
    except RawStoreBusy:
        raise
    except RawStoreError as exc:
        if _opens_with_master_only_problem(settings):
            raise ShardError(f"{exc}; other customers are not affected") from None
        detail = (
            "the file is damaged or not under this customer's key"
            if "wrong key" in str(exc)
            else str(exc).removeprefix(f"cannot open {name} {path}: ")
        )
        raise ShardError(
            f"{name} cannot be opened ({detail}): restore {path.name} from a backup made under the current "
            f"keys, or remove the customer (wellbeing customer remove {shard.customer_id} --yes); "
            "other customers are not affected"
        ) from None


def _opens_with_master_only_problem(settings: Settings) -> bool:
    """True while a key rotation is pending (then the message says to finish it)."""
    from pipeline.raw_store import rotation_pending

    return rotation_pending(settings)


@contextmanager
def shard_connection(
    settings: Settings, customer_id: str, *, create: bool = False, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The customer's shard (created when ``create``), closed on exit."""
    shard = ensure_shards(settings, [customer_id])[customer_id] if create else find_shard(settings, customer_id)
    con = open_shard(settings, shard, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def shard_and_delivery(settings: Settings, customer_id: str) -> tuple[Shard, datetime | None]:
    """The customer's live shard and the last provider event file's time, in one short catalog read."""
    ensure_migrated(settings)
    with catalog_if_any(settings) as con:
        if con is not None:
            shards = {s.customer_id: s for s in _live(con)}
            row = con.execute("SELECT max(ingested_at) FROM deliveries WHERE kind = 'events'").fetchone()
            if customer_id in shards:
                return shards[customer_id], None if row is None else row[0]
    raise UnknownCustomer(f"unknown customer {customer_id!r}: no shard in the catalog (wellbeing customer list)")


def last_event_delivery(settings: Settings) -> datetime | None:
    """When a provider event file (any customer's) was last ingested: an operational fact, from the catalog."""
    with catalog_if_any(settings) as con:
        if con is None:
            return None
        row = con.execute("SELECT max(ingested_at) FROM deliveries WHERE kind = 'events'").fetchone()
    return None if row is None else row[0]


# ---------------------------------------------------------------------------------------------
# The read view over every shard (admin commands, tests)

SHARD_TABLES = (
    "events", "pseudonyms", "headcount", "quarantine", "release_draws", "release_draw_cells",
    "release_public_headcount", "budget_ledger", "release_draw_allocations",
)  # fmt: skip
CATALOG_ONLY_TABLES = ("deliveries", "store_meta", "customers", "customer_removals")


def connect_combined(
    settings: Settings, *, lock_timeout: float = LOCK_RETRY_SECONDS, create: bool = False
) -> duckdb.DuckDBPyConnection:
    """In-memory connection with one view per raw table over the catalog and every live shard (read-only).

    Opens every shard: for admin commands and tests, never for ingest or releases.
    """
    ensure_migrated(settings)
    if not catalog_exists(settings):
        if not create:
            raise RawStoreError(
                f"the raw store {settings.shards_dir} does not exist yet: ingest a file first (wellbeing ingest FILE)"
            )
        with catalog_connection(settings):
            pass  # created (and uploaded to the shard bucket, if any)
    shards = live_shards(settings)
    con = duckdb.connect(config={"threads": "2"})
    try:
        load_httpfs(con)
        attached = [("cat", settings.catalog_path, _master(settings, create=False), "the shard catalog")]
        for i, shard in enumerate(shards):
            path = settings.shard_path(shard.shard_id)
            fetch(settings, path, name=shard_name(shard))
            if path.exists():
                attached.append((f"s{i}", path, shard_key(settings, shard), f"the shard of {shard.customer_id}"))
        for alias, path, key, name in attached:
            try:
                connect_with_alias(con, path, key, alias, lock_timeout)
            except StoreBusy as exc:
                raise RawStoreBusy(path, exc.timeout, name=name) from None
            except duckdb.Error as exc:
                raise ShardError(f"cannot open {name} ({path.name}): {type(exc).__name__}") from None
        for table in SHARD_TABLES:
            parts = [f"SELECT * FROM {alias}.{table}" for alias, *_ in attached]
            con.execute(f"CREATE VIEW {table} AS " + " UNION ALL BY NAME ".join(parts))
        for table in CATALOG_ONLY_TABLES:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM cat.{table}")
    except BaseException:
        con.close()
        raise
    return con


def connect_with_alias(con: duckdb.DuckDBPyConnection, path: Path, key: str, alias: str, timeout: float) -> None:
    from stores.connect import connect_with_retry

    connect_with_retry(
        lambda: con.execute(f"ATTACH '{_sql_path(path)}' AS {alias} (ENCRYPTION_KEY $key, READ_ONLY)", {"key": key}),
        path,
        timeout=timeout,
    )


# ---------------------------------------------------------------------------------------------
# Removal (crypto-shredding)


@dataclass(frozen=True)
class Removal:
    customer_id: str
    shard_id: str
    removed_at: datetime
    removed_by: str


def remove_customer(settings: Settings, customer_id: str, *, removed_by: str) -> Removal:
    """Crypto-shred one customer: destroy its key share, delete its shard file, record the removal.

    Order: the shard is opened read-write first (waits for, or refuses on, a process using it),
    then the key share is deleted (from then on no copy of the file can be decrypted), then the
    file and its WAL, then the catalog records who removed whom and when (no data), and the
    customer's published part is deleted and the published store rebuilt without its releases.
    Other customers are untouched.
    """
    from pipeline.releases.publish import merge_published, remove_part

    shard = find_shard(settings, customer_id)
    path = settings.shard_path(shard.shard_id)
    share = settings.customer_key_file(shard.shard_id)
    con = None
    if path.exists() and share.exists():
        try:
            con = open_shard(settings, shard)  # the lock: nobody is writing it while it is shredded
        except RawStoreBusy:
            raise
        except RawStoreError:
            con = None  # a damaged shard is removed all the same
    try:
        if share.exists():
            _shred(share)
            fsync_path(share.parent)
        for leftover in (path, path.with_name(path.name + ".wal")):
            leftover.unlink(missing_ok=True)
        fsync_path(path.parent)
    finally:
        if con is not None:
            con.close()
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)  # closing may have flushed a WAL beside the unlinked file
    delete_object(settings, path, name=shard_name(shard))  # the bucket's copy too (unreadable already)
    now = datetime.now(UTC).replace(tzinfo=None)
    with catalog_connection(settings) as cat:
        cat.execute("BEGIN TRANSACTION")
        cat.execute(
            "UPDATE customers SET removed_at = ?, removed_by = ? WHERE customer_id = ?", [now, removed_by, customer_id]
        )
        cat.execute("INSERT INTO customer_removals VALUES (?, ?, ?, ?)", [now, removed_by, customer_id, shard.shard_id])
        cat.execute("COMMIT")
    remove_part(settings, shard.shard_id)
    if settings.published_parts_dir.is_dir() or settings.published_path.exists():
        merge_published(settings)
    return Removal(customer_id, shard.shard_id, now, removed_by)


def _shred(path: Path) -> None:
    """Overwrite the key share with random bytes, flush, then delete it."""
    size = max(path.stat().st_size, 64)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, secrets.token_bytes(size))
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()


@dataclass(frozen=True)
class CustomerInfo:
    customer_id: str
    shard_id: str
    created_at: datetime
    events: int | None  # None when the shard could not be opened


def customer_list(settings: Settings) -> list[CustomerInfo]:
    """Each live customer with its shard and events count (each shard opened read-only, one at a time)."""
    out = []
    for shard in live_shards(settings):
        try:
            con = open_shard(settings, shard, read_only=True, lock_timeout=2.0)
        except RawStoreError:
            out.append(CustomerInfo(shard.customer_id, shard.shard_id, shard.created_at, None))
            continue
        try:
            (n,) = con.execute("SELECT count(*) FROM events").fetchone()  # type: ignore[misc]
        finally:
            con.close()
        out.append(CustomerInfo(shard.customer_id, shard.shard_id, shard.created_at, int(n)))
    return out


# ---------------------------------------------------------------------------------------------
# Moving an installation's shards into a shard bucket


def upload_local(settings: Settings) -> list[Shard]:
    """Upload the local catalog and every live shard to ``settings.shard_bucket`` (once; resumable).

    For an installation that kept its shards on disk and now runs with a bucket (e.g. moving
    from a shared volume to Kubernetes pods with scratch disks). The shards go first; the
    catalog last, create-only: until it is in the bucket no run uses the bucket's shards, so an
    interrupted move is simply run again, and a bucket that already has a catalog is refused
    (nothing is replaced). Then the local files are deleted and ``shards/MOVED-TO-BUCKET`` names
    the bucket: a command run without the setting refuses instead of using a stale copy. Run it
    while no run is in progress (the daemon's queue paused).
    """
    from pipeline.shard_storage import ShardStoreSetupError, in_bucket, mark_moved, seed

    if settings.shard_bucket is None:
        raise ShardStoreSetupError("no shard bucket is set: set WELLBEING_SHARD_BUCKET (e.g. s3://bucket/prefix) first")
    if in_bucket(settings, settings.catalog_path, name=CATALOG_NAME):
        raise ShardStoreSetupError(
            f"the bucket {settings.shard_bucket} already holds a catalog: this installation was moved already "
            "or another one uses the bucket; nothing was uploaded"
        )
    ensure_migrated(settings)  # with a bucket set: a legacy raw.duckdb is refused (migrate it without one first)
    local = settings.local_shards_dir
    catalog = local / "catalog.duckdb"
    if not catalog.exists():
        raise ShardStoreSetupError(f"nothing to upload: no catalog in {local}")
    con = open_encrypted(settings, catalog, _master(settings, create=False), name=CATALOG_NAME)
    try:  # a write connection: closing it checkpoints a WAL into the file that is uploaded
        shards = _live(con)
    finally:
        con.close()
    for shard in shards:
        path = local / f"{shard.shard_id}.duckdb"
        if not path.exists():
            raise ShardError(f"{shard_name(shard)} is missing in {local}; nothing was made live")
        open_encrypted(
            settings, path, shard_key(settings, shard), read_only=False, name=shard_name(shard)
        ).close()  # opens under its key; closing checkpoints its WAL into the file
        seed(settings, path, name=shard_name(shard), create_only=False)
    seed(settings, catalog, name=CATALOG_NAME, create_only=True)
    mark_moved(settings)  # the local files go: no command without the setting can use them again
    return shards


# ---------------------------------------------------------------------------------------------
# One-time migration of the legacy single store


@dataclass(frozen=True)
class Migration:
    customers: int
    counts: dict[str, dict[str, int]]  # customer -> table -> rows moved


def ensure_migrated(settings: Settings) -> Migration | None:
    """Migrate a legacy ``raw.duckdb`` into shards if there is one (cheap check otherwise)."""
    if not settings.raw_path.exists():
        return None
    if settings.shard_bucket is not None:
        from pipeline.shard_storage import ShardStoreSetupError

        raise ShardStoreSetupError(
            "a legacy raw.duckdb is still here: migrate it without the bucket first (unset WELLBEING_SHARD_BUCKET, "
            "run `wellbeing shards migrate`), then `wellbeing shards upload`; nothing was changed"
        )
    return migrate_legacy(settings)


def _customer_filters() -> dict[str, str]:
    """Per table: the legacy rows of customer ``$c`` (SQL over database ``legacy``)."""
    draws = "SELECT release_id FROM legacy.release_draws WHERE customer_id = $c"
    return {
        "headcount": "SELECT * FROM legacy.headcount WHERE customer_id = $c",
        "events": "SELECT * FROM legacy.events WHERE customer_id = $c",
        "pseudonyms": "SELECT * FROM legacy.pseudonyms WHERE employee IN "
        "(SELECT employee FROM legacy.events WHERE customer_id = $c)",
        "deliveries": "SELECT * FROM legacy.deliveries WHERE delivery_id IN "
        "(SELECT delivery_id FROM legacy.events WHERE customer_id = $c "
        " UNION SELECT delivery_id FROM legacy.headcount WHERE customer_id = $c)",
        "release_draws": "SELECT * FROM legacy.release_draws WHERE customer_id = $c",
        "release_draw_cells": f"SELECT * FROM legacy.release_draw_cells WHERE release_id IN ({draws})",
        "release_public_headcount": f"SELECT * FROM legacy.release_public_headcount WHERE release_id IN ({draws})",
        "budget_ledger": "SELECT * FROM legacy.budget_ledger WHERE customer_id = $c",
        "release_draw_allocations": "SELECT * FROM legacy.release_draw_allocations WHERE customer_id = $c",
    }


def migrate_legacy(settings: Settings, *, lock_timeout: float = LOCK_RETRY_SECONDS) -> Migration:
    """Move the legacy ``raw.duckdb`` into per-customer shards (see the module docstring).

    Per customer, ONE shard transaction copies its rows of every table (pseudonym HMACs and
    surrogate ids as they are), compares the row counts with the legacy store's and marks the
    shard migrated; a marked shard is skipped on a re-run. Then the catalog takes the file-level
    deliveries and the quarantine rows (the legacy quarantine has no customer column), and only
    when every customer is verified is the legacy file deleted. Published parts are written for
    every customer so the next publish still has every release.
    """
    from pipeline.releases.publish import merge_published, write_part

    legacy = connect_legacy(settings, lock_timeout=lock_timeout)  # migrates its schema; holds its lock
    try:
        ensure_release_schema(legacy)
        legacy.execute("CHECKPOINT")
    finally:
        legacy.close()
    master = _master(settings, create=False)
    con = duckdb.connect(config={"threads": "2"})
    counts: dict[str, dict[str, int]] = {}
    try:
        load_httpfs(con)
        try:
            connect_with_alias(con, settings.raw_path, master, "legacy", lock_timeout)
        except StoreBusy as exc:
            raise RawStoreBusy(settings.raw_path, exc.timeout) from None
        names = [
            r[0]
            for r in con.execute(
                "SELECT customer_id FROM legacy.headcount UNION SELECT customer_id FROM legacy.events "
                "UNION SELECT customer_id FROM legacy.release_draws UNION SELECT customer_id FROM legacy.budget_ledger "
                "ORDER BY 1"
            ).fetchall()
        ]
        meta = dict(con.execute("SELECT key, value FROM legacy.store_meta").fetchall())
        with catalog_connection(settings) as cat:
            shards = _ensure_in(settings, cat, names)
        filters = _customer_filters()
        for customer in names:
            shard = shards[customer]
            counts[customer] = _migrate_one(settings, con, shard, filters, meta)
        # Every customer verified: the catalog takes the file-level records, then the legacy file goes.
        total_events = sum(c["events"] for c in counts.values())
        (legacy_events,) = con.execute("SELECT count(*) FROM legacy.events").fetchone()  # type: ignore[misc]
        (legacy_ledger,) = con.execute("SELECT count(*) FROM legacy.budget_ledger").fetchone()  # type: ignore[misc]
        (legacy_draws,) = con.execute("SELECT count(*) FROM legacy.release_draws").fetchone()  # type: ignore[misc]
        if (total_events, sum(c["budget_ledger"] for c in counts.values()),
                sum(c["release_draws"] for c in counts.values())) != (legacy_events, legacy_ledger, legacy_draws):  # fmt: skip
            raise RawStoreError("migration to shards: the shards do not hold every legacy row; raw.duckdb was kept")
        deliveries = con.execute("SELECT * FROM legacy.deliveries").fetchall()
        quarantine = con.execute("SELECT * FROM legacy.quarantine").fetchall()
    finally:
        con.close()
    with catalog_connection(settings) as cat:
        done = cat.execute("SELECT value FROM store_meta WHERE key = ?", [LEGACY_MIGRATED_KEY]).fetchone()
        if done is None:
            cat.execute("BEGIN TRANSACTION")
            if deliveries:
                cat.executemany(
                    "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", deliveries
                )
            if quarantine:
                cat.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)", quarantine)
            for key in ("pseudonym_key_check",):
                if key in meta:
                    cat.execute("INSERT OR REPLACE INTO store_meta VALUES (?, ?)", [key, meta[key]])
            _set_first_snapshots(settings, cat, list(shards.values()))
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            cat.execute("INSERT OR REPLACE INTO store_meta VALUES (?, ?)", [LEGACY_MIGRATED_KEY, stamp])
            cat.execute("COMMIT")
    for shard in shards.values():
        with _open_quiet(settings, shard) as scon:
            write_part(settings, scon, shard)
    for leftover in (settings.raw_path, settings.raw_path.with_name(settings.raw_path.name + ".wal")):
        leftover.unlink(missing_ok=True)
    merge_published(settings)
    return Migration(customers=len(names), counts=counts)


@contextmanager
def _open_quiet(settings: Settings, shard: Shard) -> Iterator[duckdb.DuckDBPyConnection]:
    con = open_shard(settings, shard)
    try:
        yield con
    finally:
        con.close()


def _migrate_one(
    settings: Settings, con: duckdb.DuckDBPyConnection, shard: Shard, filters: dict[str, str], meta: dict[str, str]
) -> dict[str, int]:
    """Copy one customer's legacy rows into its shard in ONE transaction (skipped when already marked)."""
    # The shard's schema first (its own short connection), then attached to the migration's host.
    open_shard(settings, shard).close()
    key = shard_key(settings, shard)
    con.execute(
        f"ATTACH '{_sql_path(settings.shard_path(shard.shard_id))}' AS shard (ENCRYPTION_KEY $key)", {"key": key}
    )
    try:
        params = {"c": shard.customer_id}
        marked = con.execute("SELECT value FROM shard.store_meta WHERE key = ?", [LEGACY_MIGRATED_KEY]).fetchone()
        if marked is not None:
            return {t: int(con.execute(f"SELECT count(*) FROM shard.{t}").fetchone()[0]) for t in filters}  # type: ignore[index]
        con.execute("BEGIN TRANSACTION")
        try:
            moved: dict[str, int] = {}
            for table, select in filters.items():
                con.execute(f"DELETE FROM shard.{table}")  # an unmarked shard holds nothing of a finished copy
                (n,) = con.execute(f"INSERT INTO shard.{table} BY NAME {select}", params).fetchone()  # type: ignore[misc]
                (expected,) = con.execute(f"SELECT count(*) FROM ({select})", params).fetchone()  # type: ignore[misc]
                (stored,) = con.execute(f"SELECT count(*) FROM shard.{table}").fetchone()  # type: ignore[misc]
                if not (n == expected == stored):
                    raise RawStoreError(
                        f"migration of customer {shard.customer_id}: table {table} moved {stored} of {expected} rows; "
                        "raw.duckdb was kept (run it again)"
                    )
                moved[table] = int(stored)
            for key_name in ("employee_id_high_water", "pseudonym_key_check"):
                if key_name in meta:
                    con.execute("INSERT OR REPLACE INTO shard.store_meta VALUES (?, ?)", [key_name, meta[key_name]])
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            con.execute("INSERT OR REPLACE INTO shard.store_meta VALUES (?, ?)", [LEGACY_MIGRATED_KEY, stamp])
            _stage("shard migrated")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return moved
    finally:
        con.execute("DETACH shard")


def _stage(name: str) -> None:
    """A named point of the migration (tests interrupt it here)."""


def _set_first_snapshots(settings: Settings, cat: duckdb.DuckDBPyConnection, shards: list[Shard]) -> None:
    for shard in shards:
        con = open_shard(settings, shard, read_only=True)
        try:
            (first,) = con.execute("SELECT min(as_of) FROM headcount").fetchone()  # type: ignore[misc]
        finally:
            con.close()
        cat.execute("UPDATE customers SET first_snapshot = ? WHERE customer_id = ?", [first, shard.customer_id])


def record_first_snapshot(cat: duckdb.DuckDBPyConnection, customer_id: str, first: object) -> None:
    """Keep the catalog's first headcount month of a customer (public structure) up to date."""
    cat.execute(
        "UPDATE customers SET first_snapshot = least(coalesce(first_snapshot, ?::DATE), ?::DATE) WHERE customer_id = ?",
        [first, first, customer_id],
    )


__all__ = [
    "Shard",
    "ShardError",
    "UnknownCustomer",
    "catalog_connection",
    "connect_catalog",
    "customers",
    "ensure_shards",
    "find_shard",
    "live_shards",
    "migrate_legacy",
    "open_shard",
    "remove_customer",
    "shard_connection",
    "_attach_with_retry",
]
