"""``wellbeing keys rotate``: re-encrypt the raw store under a new master key, atomically and resumably.

The master key (``raw.key``) encrypts the shard catalog and, combined with each customer's key
share, every customer shard (:func:`pipeline.shards.derive_shard_key`); rotating it re-encrypts
every file. Steps (files in the key folder and the data folder):

1. a new master key is written to ``raw.key.next`` (0600, flushed);
2. file by file (each customer shard, then the catalog): the file is copied under its new key
   to ``<file>.next`` while the old file stays attached read-write (no other process can open
   it meanwhile); every table's row count is compared, the copy is flushed to disk, and
   ``os.replace`` swaps it in (atomic on one file system);
3. once every file opens with the new key, the old key is retired: moved to
   ``retired/raw-<UTC time>.key`` (0600), a line with both fingerprints goes to
   ``rotations.log``, and ``raw.key.next`` becomes ``raw.key``.

Interrupted before any file was swapped, running the command again discards the next key and
starts over. Interrupted later, each file is probed: a file already under the next key is
skipped, the others are rotated, then step 3 finishes. Either way nothing is lost (a file is
always under exactly one of the two keys, both on disk until step 3).

Privacy reason: a copy of the store taken before the rotation (a backup, a stolen disk)
cannot be opened with the current key, and the retired key is recorded so that it can be
destroyed once no backup made under it is kept. The key shares are not rotated: removing a
customer destroys its share, which still makes every copy of its shard unreadable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.keys import RAW_KEY_ENV, fsync_path, make_private_dir, new_key, read_key_file, write_key_file
from pipeline.raw_store import (
    LOCK_RETRY_SECONDS,
    RawStoreBusy,
    RawStoreError,
    RawStoreKeyError,
    _attach_with_retry,
    load_httpfs,
)
from pipeline.settings import Settings
from pipeline.shard_storage import fetch, upload
from stores.connect import StoreBusy


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: fingerprints (never keys), the retired key's file, and whether it resumed."""

    old_fingerprint: str
    new_fingerprint: str
    retired_file: Path
    resumed: bool
    tables: int


def fingerprint(key: str) -> str:
    """A short, non-reversible name for a key (first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()[:16]


def next_key_file(settings: Settings) -> Path:
    return settings.raw_key_file.with_name(settings.raw_key_file.name + ".next")


def next_store_file(settings: Settings, path: Path | None = None) -> Path:
    path = path if path is not None else settings.catalog_path
    return path.with_name(path.name + ".next")


def _stage(name: str) -> None:
    """A named point between steps (tests interrupt the rotation here)."""


def _files(settings: Settings, master: str, share_master: str) -> list[tuple[Path, str, str]]:
    """(file, key under ``master``, key under ``share_master``) of every shard, then the catalog."""
    from pipeline.shards import CATALOG_NAME, _live, derive_shard_key, shard_name

    fetch(settings, settings.catalog_path, name=CATALOG_NAME)  # with a shard bucket: its current copies
    probe_key = master if _opens_with(settings.catalog_path, master) else share_master
    con = duckdb.connect()
    try:
        load_httpfs(con)
        con.execute(
            f"ATTACH '{_sql_path(settings.catalog_path)}' AS raw (ENCRYPTION_KEY $key, READ_ONLY)", {"key": probe_key}
        )
        con.execute("USE raw")
        shards = _live(con)
    finally:
        con.close()
    out = []
    for shard in shards:
        path = settings.shard_path(shard.shard_id)
        fetch(settings, path, name=shard_name(shard))
        if not path.exists():
            continue
        share = read_key_file(settings.customer_key_file(shard.shard_id))
        out.append(
            (
                path,
                derive_shard_key(master, shard.shard_id, share),
                derive_shard_key(share_master, shard.shard_id, share),
            )
        )
    out.append((settings.catalog_path, master, share_master))
    return out


def rotate_raw_key(settings: Settings) -> Rotation:
    """Re-encrypt the catalog and every shard under a new master key (see the module docstring); resumable."""
    from pipeline.shards import ensure_migrated

    if os.environ.get(RAW_KEY_ENV):
        raise RawStoreKeyError(
            f"the raw key comes from {RAW_KEY_ENV}: rotate it where it is kept (secret manager), or unset "
            f"{RAW_KEY_ENV} to use key files in {settings.keys_dir}"
        )
    from pipeline.shards import store_exists

    if not store_exists(settings):
        raise RawStoreError(f"raw store {settings.shards_dir} does not exist yet: nothing to rotate")
    key_next = next_key_file(settings)
    if not key_next.exists():
        ensure_migrated(settings)  # a legacy single store becomes shards first (under the current key)
    old = read_key_file(settings.raw_key_file)  # the current key file must be there and private
    resumed = False
    if key_next.exists():
        new = read_key_file(key_next)
        files = _files(settings, old, new)
        if any(_opens_with(path, new_key) for path, _, new_key in files):
            resumed = True  # interrupted after a file was swapped: finish the others
        else:
            key_next.unlink()  # interrupted before any swap: every file is still under the old key
    if not key_next.exists():
        write_key_file(key_next, new_key())
        _stage("next key written")
    new = read_key_file(key_next)
    tables = 0
    for path, old_key, next_key in _files(settings, old, new):
        for leftover in (
            next_store_file(settings, path),
            next_store_file(settings, path).with_name(path.name + ".next.wal"),
        ):
            leftover.unlink(missing_ok=True)
        if resumed and _opens_with(path, next_key):
            continue
        tables += _copy_and_commit(settings, path, old_key, next_key)
        upload(settings, path, name=path.name)  # with a shard bucket: the rotated file replaces the old copy
    _stage("store replaced")
    return _retire(settings, resumed=resumed, tables=tables)


def _copy_and_commit(settings: Settings, path: Path, old_key: str, key: str) -> int:
    """Copy one file under ``key`` beside it, check it, and swap it in while holding the old file's lock."""
    store_next = next_store_file(settings, path)
    con = duckdb.connect(config={"threads": "2"})
    try:
        load_httpfs(con)
        try:
            _attach_with_retry(con, path, old_key, read_only=False, timeout=LOCK_RETRY_SECONDS)
        except StoreBusy as exc:
            raise RawStoreBusy(path, exc.timeout) from None
        except duckdb.Error as exc:
            raise RawStoreError(
                f"key rotation: cannot open {path.name} ({type(exc).__name__}); nothing was changed"
            ) from None
        con.execute("CHECKPOINT raw")
        con.execute(f"ATTACH '{_sql_path(store_next)}' AS rotated (ENCRYPTION_KEY $key)", {"key": key})
        con.execute("COPY FROM DATABASE raw TO rotated")
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'raw' ORDER BY 1"
        ).fetchall()]  # fmt: skip
        for table in tables:
            (a,) = con.execute(f'SELECT count(*) FROM raw."{table}"').fetchone()  # type: ignore[misc]
            (b,) = con.execute(f'SELECT count(*) FROM rotated."{table}"').fetchone()  # type: ignore[misc]
            if a != b:
                raise RawStoreError(f"key rotation: table {table} copied {b} of {a} rows; the store is unchanged")
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        con.execute("INSERT OR REPLACE INTO rotated.store_meta VALUES ('raw_key_rotated_at', ?)", [stamp])
        con.execute("CHECKPOINT rotated")
        con.execute("DETACH rotated")
        fsync_path(store_next)
        _stage("copy checked")
        os.replace(store_next, path)  # commit: the old file is still locked by this connection
        fsync_path(path.parent)
        return len(tables)
    finally:
        con.close()


def _retire(settings: Settings, *, resumed: bool, tables: int) -> Rotation:
    """Move the old key to ``retired/`` with a log line, then make the next key current."""
    key_next = next_key_file(settings)
    new = read_key_file(key_next)
    old = read_key_file(settings.raw_key_file)
    retired_dir = settings.keys_dir / "retired"
    make_private_dir(retired_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    earlier = sorted(retired_dir.glob(f"raw-*-{fingerprint(old)}.key"))  # a resumed run retired it already
    retired = earlier[0] if earlier else retired_dir / f"raw-{stamp}-{fingerprint(old)}.key"
    if not earlier:
        shutil.copy2(settings.raw_key_file, retired)
        retired.chmod(0o600)
        fsync_path(retired)
    fd = os.open(settings.keys_dir / "rotations.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as log:
        log.write(f"{stamp} raw key {fingerprint(old)} retired ({retired.name}); current {fingerprint(new)}\n")
        log.flush()
        os.fsync(log.fileno())
    os.replace(key_next, settings.raw_key_file)
    fsync_path(settings.keys_dir)
    return Rotation(fingerprint(old), fingerprint(new), retired, resumed, tables)


def _opens_with(path: Path, key: str) -> bool:
    """Whether the encrypted file opens with ``key`` (read-only probe; no write)."""
    con = duckdb.connect()
    try:
        load_httpfs(con)
        con.execute(f"ATTACH '{_sql_path(path)}' AS probe (ENCRYPTION_KEY $key, READ_ONLY)", {"key": key})
        return True
    except duckdb.Error as exc:
        if "encryption key" in str(exc).lower():
            return False
        raise RawStoreError(f"key rotation: cannot open {path} ({type(exc).__name__}); nothing was changed") from None
    finally:
        con.close()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
