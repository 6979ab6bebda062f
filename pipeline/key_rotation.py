"""``wellbeing keys rotate``: re-encrypt the raw store under a new key, atomically and resumably.

Steps (files in the key folder and the data folder):

1. a new key is written to ``raw.key.next`` (0600, flushed);
2. the store is copied, under the new key, to ``raw.duckdb.next`` while the old file stays
   attached read-write (no other process can open it meanwhile); every table's row count is
   compared, the copy is flushed to disk;
3. **commit**: ``os.replace(raw.duckdb.next, raw.duckdb)`` (atomic on one file system);
4. the old key is retired: moved to ``retired/raw-<UTC time>.key`` (0600), a line with both
   fingerprints goes to ``rotations.log``, and ``raw.key.next`` becomes ``raw.key``.

Interrupted before step 3, the store is untouched (still under the old key): running the
command again discards the partial copy and starts over. Interrupted after step 3, the store
opens with ``raw.key.next`` only: running the command again finishes step 4. Either way
nothing is lost.

Privacy reason: a copy of the store taken before the rotation (a backup, a stolen disk)
cannot be opened with the current key, and the retired key is recorded so that it can be
destroyed once no backup made under it is kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.keys import RAW_KEY_ENV, make_private_dir, new_key, read_key_file, write_key_file
from pipeline.raw_store import RawStoreError, RawStoreKeyError, connect_raw, load_httpfs
from pipeline.settings import Settings


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


def next_store_file(settings: Settings) -> Path:
    return settings.raw_path.with_name(settings.raw_path.name + ".next")


def _stage(name: str) -> None:
    """A named point between steps (tests interrupt the rotation here)."""


def rotate_raw_key(settings: Settings) -> Rotation:
    """Re-encrypt the raw store under a new key (see the module docstring); resumes an interrupted run."""
    if os.environ.get(RAW_KEY_ENV):
        raise RawStoreKeyError(
            f"the raw key comes from {RAW_KEY_ENV}: rotate it where it is kept (secret manager), or unset "
            f"{RAW_KEY_ENV} to use key files in {settings.keys_dir}"
        )
    if not settings.raw_path.exists():
        raise RawStoreError(f"raw store {settings.raw_path} does not exist yet: nothing to rotate")
    key_next, store_next = next_key_file(settings), next_store_file(settings)
    if key_next.exists():
        if _opens_with(settings.raw_path, read_key_file(key_next)):
            return _retire(settings, resumed=True, tables=0)  # interrupted after the commit
        key_next.unlink()  # interrupted before the commit: the store is still under the old key
    store_next.unlink(missing_ok=True)
    for leftover in (store_next.with_name(store_next.name + ".wal"),):
        leftover.unlink(missing_ok=True)
    read_key_file(settings.raw_key_file)  # the current key file must be there and private
    write_key_file(key_next, new_key())
    _stage("next key written")
    tables = _copy_and_commit(settings, read_key_file(key_next))
    _stage("store replaced")
    return _retire(settings, resumed=False, tables=tables)


def _copy_and_commit(settings: Settings, key: str) -> int:
    """Copy the store under ``key`` beside it, check it, and swap it in while holding the old file's lock."""
    store_next = next_store_file(settings)
    con = connect_raw(settings)  # read-write: the lock keeps every other process out until the swap
    try:
        con.execute("CHECKPOINT")
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
        _fsync(store_next)
        _stage("copy checked")
        os.replace(store_next, settings.raw_path)  # commit: the old file is still locked by this connection
        _fsync(settings.raw_path.parent)
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
        _fsync(retired)
    fd = os.open(settings.keys_dir / "rotations.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as log:
        log.write(f"{stamp} raw key {fingerprint(old)} retired ({retired.name}); current {fingerprint(new)}\n")
        log.flush()
        os.fsync(log.fileno())
    os.replace(key_next, settings.raw_key_file)
    _fsync(settings.keys_dir)
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
