"""The encrypted raw store: keys, encryption at rest, and waiting for the single writer."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pipeline.keys import RAW_KEY_ENV
from pipeline.raw_store import RawStoreError, connect_raw
from pipeline.settings import Settings

HOLD = (
    "import sys, time\n"
    "from pipeline.settings import Settings\n"
    "from pipeline.raw_store import connect_raw\n"
    "c = connect_raw(Settings.from_env())\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[1]))\n"
    "c.close()\n"
)


def _hold_lock(seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_store_is_encrypted_and_key_file_private(settings: Settings) -> None:
    con = connect_raw(settings)
    con.execute("INSERT INTO headcount VALUES ('cust-PLAINTEXT-MARKER', 'site', 'dept', NULL, 12, '2025-01-01', 1)")
    assert con.execute("SELECT encrypted FROM duckdb_databases() WHERE database_name = 'raw'").fetchone() == (True,)
    con.close()
    assert b"PLAINTEXT-MARKER" not in settings.raw_path.read_bytes()
    assert settings.raw_key_file.stat().st_mode & 0o777 == 0o600


def test_wrong_or_missing_key_is_refused_and_changes_nothing(settings: Settings, monkeypatch) -> None:
    connect_raw(settings).close()
    before = settings.raw_path.read_bytes()
    monkeypatch.setenv(RAW_KEY_ENV, "f" * 64)
    with pytest.raises(RawStoreError, match="wrong key"):
        connect_raw(settings)
    monkeypatch.delenv(RAW_KEY_ENV)
    settings.raw_key_file.rename(settings.raw_key_file.with_suffix(".bak"))
    with pytest.raises(RawStoreError, match="no key"):
        connect_raw(settings)
    assert not settings.raw_key_file.exists(), "a missing key must never be silently re-created"
    assert settings.raw_path.read_bytes() == before


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
    assert os.path.exists(settings.raw_path)


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
