"""The encrypted raw store (a customer's shard, the catalog): keys, encryption at rest, and waiting
for the single writer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.keys import RAW_KEY_ENV
from pipeline.raw_store import LOCK_RETRY_SECONDS, RawStoreError
from pipeline.settings import Settings
from pipeline.shards import connect_catalog, ensure_shards, open_shard

HOLD = (
    "import sys, time\n"
    "from pipeline.settings import Settings\n"
    "from pipeline.shards import ensure_shards, open_shard\n"
    "s = Settings.from_env()\n"
    "c = open_shard(s, ensure_shards(s, ['acme'])['acme'])\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[1]))\n"
    "c.close()\n"
)


def connect_raw(settings: Settings, lock_timeout: float = LOCK_RETRY_SECONDS) -> duckdb.DuckDBPyConnection:
    """The shard of customer ``acme`` (created on first use), as database ``raw``."""
    return open_shard(settings, ensure_shards(settings, ["acme"])["acme"], lock_timeout=lock_timeout)


def _path(settings: Settings) -> Path:
    return settings.shard_path(ensure_shards(settings, ["acme"])["acme"].shard_id)


def _hold_lock(seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_store_is_encrypted_and_key_file_private(settings: Settings) -> None:
    con = connect_raw(settings)
    con.execute("INSERT INTO headcount VALUES ('cust-PLAINTEXT-MARKER', 'site', 'dept', NULL, 12, '2025-01-01', 1)")
    assert con.execute("SELECT encrypted FROM duckdb_databases() WHERE database_name = 'raw'").fetchone() == (True,)
    con.close()
    assert b"PLAINTEXT-MARKER" not in _path(settings).read_bytes()
    assert settings.raw_key_file.stat().st_mode & 0o777 == 0o600


def test_wrong_or_missing_key_is_refused_and_changes_nothing(settings: Settings, monkeypatch) -> None:
    connect_raw(settings).close()
    path = _path(settings)
    before, catalog = path.read_bytes(), settings.catalog_path.read_bytes()
    monkeypatch.setenv(RAW_KEY_ENV, "f" * 64)
    with pytest.raises(RawStoreError, match="wrong key"):
        connect_catalog(settings)
    monkeypatch.delenv(RAW_KEY_ENV)
    settings.raw_key_file.rename(settings.raw_key_file.with_suffix(".bak"))
    with pytest.raises(RawStoreError, match="no key"):
        connect_catalog(settings)
    assert not settings.raw_key_file.exists(), "a missing key must never be silently re-created"
    assert path.read_bytes() == before and settings.catalog_path.read_bytes() == catalog


def test_writer_waits_for_a_short_lock(settings: Settings) -> None:
    connect_raw(settings).close()
    holder = _hold_lock(1.5)
    try:
        started = time.monotonic()
        connect_raw(settings, lock_timeout=20).close()
        assert time.monotonic() - started > 0.3, "the lock was not held: the test proves nothing"
    finally:
        holder.wait(timeout=30)


def test_a_lock_held_too_long_gives_a_clear_error(settings: Settings) -> None:
    connect_raw(settings).close()
    holder = _hold_lock(6)
    try:
        with pytest.raises(RawStoreError, match="in use by another process"):
            connect_raw(settings, lock_timeout=0.5)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert os.path.exists(_path(settings))


def test_spilled_temp_files_are_encrypted_and_stay_in_the_home(settings: Settings) -> None:
    con = connect_raw(settings)
    try:
        values = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('temp_file_encryption', 'temp_directory')"
            ).fetchall()
        )
    finally:
        con.close()
    assert values["temp_file_encryption"] == "true"
    assert values["temp_directory"] == str(settings.home / "tmp")


def test_new_store_has_the_current_schema(settings: Settings) -> None:
    """Schema v2: events hold an integer surrogate id; the HMAC pseudonym lives once in ``pseudonyms``."""
    from pipeline.raw_store import RAW_SCHEMA_VERSION

    con = connect_raw(settings)
    try:
        assert con.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone() == (
            str(RAW_SCHEMA_VERSION),
        )
        columns = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, data_type FROM duckdb_columns() WHERE database_name = 'raw' "
                "AND column_name IN ('employee', 'pseudonym')"
            ).fetchall()
        )
    finally:
        con.close()
    assert RAW_SCHEMA_VERSION == 2
    assert columns == {"events.employee": "BIGINT", "pseudonyms.employee": "BIGINT", "pseudonyms.pseudonym": "VARCHAR"}
    connect_raw(settings).close()  # reopening an up-to-date store is a no-op
