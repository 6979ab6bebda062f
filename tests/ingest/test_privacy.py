"""Pseudonymisation, encryption at rest and key handling of the raw store."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest
from ingest_helpers import events, query, store_snapshot, write_csv

from pipeline.cli import main
from pipeline.ingest import PseudonymKeyError, ingest_files
from pipeline.keys import PSEUDONYM_KEY_ENV, RAW_KEY_ENV
from pipeline.raw_store import RawStoreError
from pipeline.settings import Settings
from privacy.pseudonymise import hmac_sql, hmac_sql_params, key_check, pseudonym, pseudonyms


def test_stored_pseudonym_is_keyed_hmac_of_client_ref(settings: Settings, drop: Path) -> None:
    rows = events(20)
    ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    key = settings.pseudonym_key_file.read_text(encoding="ascii").strip().encode("ascii")
    stored = dict(query(settings, "SELECT e.event_id, p.pseudonym FROM events e JOIN pseudonyms p USING (employee)"))
    assert len(stored) == len(rows)
    for row in rows:
        expected = hmac.new(key, row["client_ref"].encode("utf-8"), hashlib.sha256).hexdigest()
        assert stored[row["event_id"]] == expected
    assert len(set(stored.values())) == 7  # one pseudonym per client, not per row
    assert query(settings, "SELECT count(*), count(DISTINCT pseudonym) FROM pseudonyms") == [(7, 7)]
    (employee_type,) = query(
        settings, "SELECT data_type FROM duckdb_columns() WHERE table_name = 'events' AND column_name = 'employee'"
    )[0]
    assert employee_type == "BIGINT"  # events hold the surrogate id, never the hex pseudonym
    columns = {c for (c,) in query(settings, "SELECT column_name FROM duckdb_columns() WHERE database_name = 'raw'")}
    assert "client_ref" not in columns


def test_pseudonym_key_comes_from_env_and_is_not_the_db_key(settings: Settings, drop: Path, monkeypatch) -> None:
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "p" * 40)
    ingest_files(settings, [write_csv(drop / "d.csv", events(1))])
    (stored,) = query(settings, "SELECT p.pseudonym FROM events e JOIN pseudonyms p USING (employee)")[0]
    assert stored == pseudonym(b"p" * 40, events(1)[0]["client_ref"])
    raw_key = settings.raw_key_file.read_text(encoding="ascii").strip()
    assert raw_key.encode() != b"p" * 40 and not settings.pseudonym_key_file.exists()


def test_pseudonymise_helpers() -> None:
    key = b"k" * 32
    refs = ["a", "ünïcödé", ""]
    assert pseudonyms(key, refs) == [hmac.new(key, r.encode(), hashlib.sha256).hexdigest() for r in refs]
    assert key_check(key) != key_check(b"j" * 32)
    with pytest.raises(ValueError):
        pseudonym(b"short", "a")


def test_no_input_string_in_clear_in_the_store_files(settings: Settings, drop: Path) -> None:
    rows = events(50)
    ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    needles = {r["client_ref"] for r in rows} | {r["event_id"] for r in rows}
    needles |= {"SITE-LEEDS", "DEPT-FINANCE", "ROLE-ANALYST", "d.csv"}
    files = [p for p in settings.home.rglob("*") if p.is_file() and "keys" not in p.parts]
    assert settings.catalog_path in files and any(
        p.parent == settings.shards_dir for p in files if p != settings.catalog_path
    )
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle.encode() not in data, f"{needle} in clear in {path.name}"


def test_wrong_raw_key_gives_clear_error_and_store_untouched(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(write_csv(drop / "a.csv", events(3)))]) == 0
    before = store_snapshot(settings)
    raw_bytes = settings.catalog_path.read_bytes()
    monkeypatch.setenv(RAW_KEY_ENV, "0" * 64)
    capsys.readouterr()
    code = main(["ingest", str(write_csv(drop / "b.csv", events(3, start=10)))])
    assert code != 0
    assert "wrong key for the raw store" in capsys.readouterr().err
    monkeypatch.delenv(RAW_KEY_ENV)
    assert settings.catalog_path.read_bytes() == raw_bytes
    assert store_snapshot(settings) == before


def test_missing_raw_key_gives_clear_error(settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(write_csv(drop / "a.csv", events(3)))]) == 0
    raw_bytes = settings.catalog_path.read_bytes()
    settings.raw_key_file.unlink()
    capsys.readouterr()
    assert main(["ingest", str(write_csv(drop / "b.csv", events(3, start=10)))]) == 2
    err = capsys.readouterr().err
    assert "no key" in err and "WELLBEING_RAW_KEY" in err
    assert settings.catalog_path.read_bytes() == raw_bytes
    assert not settings.raw_key_file.exists()  # never silently re-created for an existing store


def test_wrong_or_missing_pseudonym_key_refuses_to_ingest(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_files(settings, [write_csv(drop / "a.csv", events(3))])
    before = store_snapshot(settings)
    monkeypatch.setenv(PSEUDONYM_KEY_ENV, "x" * 64)
    with pytest.raises(PseudonymKeyError, match="not the key this store's pseudonyms were made with"):
        ingest_files(settings, [write_csv(drop / "b.csv", events(3, start=10))])
    monkeypatch.delenv(PSEUDONYM_KEY_ENV)
    settings.pseudonym_key_file.unlink()
    capsys.readouterr()
    assert main(["ingest", str(drop / "b.csv")]) == 2
    assert "pseudonym key" in capsys.readouterr().err
    assert not settings.pseudonym_key_file.exists()
    assert store_snapshot(settings) == before
    assert isinstance(PseudonymKeyError("x"), RawStoreError)


def test_key_files_are_private(settings: Settings, drop: Path) -> None:
    ingest_files(settings, [write_csv(drop / "a.csv", events(1))])
    for path in (settings.raw_key_file, settings.pseudonym_key_file):
        assert os.stat(path).st_mode & 0o077 == 0


@pytest.mark.parametrize("key_len", [16, 40, 64, 65, 200])
def test_bulk_pseudonyms_equal_the_standard_hmac_for_any_key_length(key_len: int) -> None:
    """The bulk path (copied keyed state) must give exactly HMAC-SHA256 for every key length (long keys hashed)."""
    key = bytes(range(key_len))
    refs = ["C-1", "", "é" * 100, "x" * 300, "CLIENTREF-0001-SECRET"]
    assert pseudonyms(key, refs) == [hmac.new(key, r.encode("utf-8"), hashlib.sha256).hexdigest() for r in refs]
    assert pseudonyms(key, []) == []


@pytest.mark.parametrize("key_len", [16, 40, 63, 64, 65, 200])
def test_duckdb_hmac_equals_the_standard_hmac_for_any_key_length(key_len: int) -> None:
    """Ingest hashes inside DuckDB (RFC 2104 over its sha256): byte-for-byte the standard library's HMAC."""
    import duckdb

    key = bytes((7 * i + 3) % 256 for i in range(key_len))
    refs = ["C-1", "", "é" * 100, "x" * 300, "CLIENTREF-0001-SECRET", "中文-ü-\u0000-end", "a'b\"c"]
    con = duckdb.connect()
    try:
        got = con.execute(
            f"SELECT {hmac_sql('r')} FROM unnest($refs) WITH ORDINALITY t(r, i) ORDER BY i",
            {"refs": refs, **hmac_sql_params(key)},
        ).fetchall()
    finally:
        con.close()
    assert [g[0] for g in got] == [hmac.new(key, r.encode("utf-8"), hashlib.sha256).hexdigest() for r in refs]
    assert not any(key.hex() in g[0] for g in got)
    with pytest.raises(ValueError, match="at least"):
        hmac_sql_params(b"short")
