"""Per-customer encrypted shards: isolation, crypto-shredding, concurrent ingest, corrupt shards,
retention and key rotation per shard (pipeline.shards)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from ingest_helpers import event, events, query, seed_headcount, store_snapshot, write_csv

from pipeline import key_rotation, shards
from pipeline.cli import main
from pipeline.ingest import PartlyStored, ingest_files
from pipeline.ingest.load import PAUSE_MARKER, TEST_PAUSE_ENV
from pipeline.keys import KEY_ENV_VARS, read_key_file
from pipeline.raw_store import load_httpfs
from pipeline.retention import purge_older_than
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GLOBEX = [("globex", "SITE-LEEDS", "DEPT-FINANCE", "ROLE-ANALYST")]


def _opens(path: Path, key: str) -> bool:
    con = duckdb.connect()
    try:
        load_httpfs(con)
        con.execute(f"ATTACH '{path}' AS probe (ENCRYPTION_KEY $key, READ_ONLY)", {"key": key})
        return True
    except duckdb.Error:
        return False
    finally:
        con.close()


def _rows(path: Path, key: str, sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        load_httpfs(con)
        con.execute(f"ATTACH '{path}' AS s (ENCRYPTION_KEY $key, READ_ONLY)", {"key": key})
        con.execute("USE s")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _two_customers(settings: Settings, drop: Path, n: int = 20) -> None:
    seed_headcount(settings, GLOBEX)
    rows = events(n) + [event(1000 + i, customer_id="globex", client_ref=f"G-{i % 5}") for i in range(n)]
    reports, refused = ingest_files(settings, [write_csv(drop / "both.csv", rows)])
    assert refused == [] and reports[0].accepted == 2 * n


def _shard(settings: Settings, customer: str) -> shards.Shard:
    return shards.find_shard(settings, customer)


def _key(settings: Settings, shard: shards.Shard) -> str:
    return shards.shard_key(settings, shard)


def test_each_customer_has_its_own_file_key_and_rows_only(settings: Settings, drop: Path) -> None:
    _two_customers(settings, drop)
    acme, globex = _shard(settings, "acme"), _shard(settings, "globex")
    assert acme.shard_id != globex.shard_id
    files = sorted(p.name for p in settings.shards_dir.iterdir() if p.suffix == ".duckdb")
    assert files == sorted(["catalog.duckdb", f"{acme.shard_id}.duckdb", f"{globex.shard_id}.duckdb"])
    assert not any("acme" in f or "globex" in f for f in files)  # opaque file names
    master = read_key_file(settings.raw_key_file)
    for shard, other in ((acme, globex), (globex, acme)):
        path = settings.shard_path(shard.shard_id)
        share = settings.customer_key_file(shard.shard_id)
        assert share.stat().st_mode & 0o777 == 0o600 and settings.customer_keys_dir.stat().st_mode & 0o777 == 0o700
        assert _opens(path, _key(settings, shard))
        assert not _opens(path, master)  # the master key alone opens no shard
        assert not _opens(path, _key(settings, other))  # nor does another customer's key
        customers = _rows(path, _key(settings, shard), "SELECT DISTINCT customer_id FROM events")
        assert customers == [(shard.customer_id,)]  # one file holds no other customer's rows
        assert _rows(path, _key(settings, shard), "SELECT DISTINCT customer_id FROM headcount") == [
            (shard.customer_id,)
        ]
    assert _opens(settings.catalog_path, master)
    assert query(settings, "SELECT customer_id, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        ("acme", 20),
        ("globex", 20),
    ]


def test_rows_of_no_valid_customer_are_quarantined_in_the_catalog(settings: Settings, drop: Path) -> None:
    rows = [event(0), event(1, customer_id="initech"), event(2, customer_id="")]
    reports, _ = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert (reports[0].rows_total, reports[0].accepted, reports[0].quarantined) == (3, 1, 2)
    with shards.catalog_connection(settings, read_only=True) as cat:
        assert cat.execute("SELECT row_number, column_name FROM quarantine ORDER BY 1").fetchall() == [
            (2, "customer_id"),
            (3, "customer_id"),
        ]
        assert cat.execute("SELECT file_name, rows_total, rows_accepted FROM deliveries").fetchall() == [
            ("d.csv", 3, 1)
        ]
    assert shards.customers(settings) == ["acme"]  # no shard for a customer without a headcount


def test_a_delivery_of_several_customers_keeps_file_row_numbers_and_file_order(settings: Settings, drop: Path) -> None:
    """Such a delivery is staged sorted by customer (each customer's part reads only its rows); the
    quarantine's row numbers and "the last occurrence of an event wins" still follow the file."""
    seed_headcount(settings, GLOBEX)
    rows = [
        event(1),  # row 1
        event(1001, customer_id="globex"),  # row 2
        event(2, who5_raw="99"),  # row 3: acme, out of range
        event(1002, customer_id="globex", who5_raw="77"),  # row 4: globex, out of range
        event(1, who5_raw="20"),  # row 5: acme's first event again, the later copy wins
        event(3, customer_id="initech"),  # row 6: no shard, quarantined in the catalog
        event(1003, customer_id="globex"),  # row 7
    ]
    reports, refused = ingest_files(settings, [write_csv(drop / "mixed.csv", rows)])
    assert refused == []
    report = reports[0]
    assert (report.rows_total, report.accepted, report.quarantined, report.duplicate) == (7, 3, 3, 1)
    assert query(settings, "SELECT row_number, column_name FROM quarantine ORDER BY 1") == [
        (3, "who5_raw"),
        (4, "who5_raw"),
        (6, "customer_id"),
    ]  # the shards' quarantine and the catalog's
    with shards.catalog_connection(settings, read_only=True) as cat:
        assert cat.execute("SELECT row_number, column_name FROM quarantine").fetchall() == [(6, "customer_id")]
    assert query(settings, "SELECT event_id, customer_id, who5_raw FROM events ORDER BY 1") == [
        ("EVT-000001", "acme", 20),
        ("EVT-001001", "globex", 12),
        ("EVT-001003", "globex", 12),
    ]


def test_remove_crypto_shreds_the_customer_and_leaves_the_others(
    settings: Settings, drop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_customers(settings, drop)
    acme, globex = _shard(settings, "acme"), _shard(settings, "globex")
    path = settings.shard_path(acme.shard_id)
    backup = tmp_path / "backup.duckdb"
    shutil.copy2(path, backup)  # a backup taken before the removal
    master = read_key_file(settings.raw_key_file)
    assert main(["customer", "remove", "acme"]) == 2  # no --yes: nothing happens
    assert path.exists() and settings.customer_key_file(acme.shard_id).exists()
    capsys.readouterr()
    assert main(["customer", "remove", "acme", "--yes", "--removed-by", "dpo"]) == 0
    assert "acme removed" in capsys.readouterr().out
    assert not path.exists() and not path.with_name(path.name + ".wal").exists()
    assert not settings.customer_key_file(acme.shard_id).exists()
    assert not _opens(backup, master)  # the master key alone cannot open the backup
    assert shards.customers(settings) == ["globex"]
    with shards.catalog_connection(settings, read_only=True) as cat:
        assert cat.execute("SELECT removed_by, customer_id, shard_id FROM customer_removals").fetchall() == [
            ("dpo", "acme", acme.shard_id)
        ]
    assert query(settings, "SELECT customer_id, count(*) FROM events GROUP BY 1") == [("globex", 20)]
    assert _opens(settings.shard_path(globex.shard_id), _key(settings, globex))
    assert main(["customer", "list"]) == 0
    out = capsys.readouterr().out
    assert "globex" in out and "acme" not in out and globex.shard_id in out
    assert main(["customer", "remove", "acme", "--yes"]) == 2  # unknown now


def test_two_ingests_of_different_customers_run_side_by_side(settings: Settings, drop: Path) -> None:
    """Process 1 holds acme's shard in an open transaction; process 2 ingests globex meanwhile."""
    seed_headcount(settings, GLOBEX)
    a = write_csv(drop / "a.csv", events(300))
    g = write_csv(drop / "g.csv", [event(5000 + i, customer_id="globex") for i in range(300)])
    base = {k: v for k, v in os.environ.items() if k not in KEY_ENV_VARS}
    base["WELLBEING_HOME"] = str(settings.home)
    cmd = [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())", "ingest"]
    first = subprocess.Popen(
        [*cmd, str(a)], cwd=ROOT, env={**base, TEST_PAUSE_ENV: "8"}, stderr=subprocess.PIPE, text=True
    )
    try:
        assert first.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = first.stderr.readline()
            if PAUSE_MARKER in line or not line:
                break
        assert PAUSE_MARKER in line, "the first ingest never reached its open transaction"
        t0 = time.monotonic()
        second = subprocess.run([*cmd, str(g)], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert first.poll() is None, "the second ingest should finish while the first still holds its shard"
        assert time.monotonic() - t0 < 8
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert query(settings, "SELECT customer_id, count(*) FROM events GROUP BY 1 ORDER BY 1") == [
        ("acme", 300),
        ("globex", 300),
    ]
    assert query(settings, "SELECT count(*) FROM deliveries") == [(2,)]


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), 97):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupt_shard_affects_only_its_customer(
    settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_customers(settings, drop)
    acme = _shard(settings, "acme")
    _corrupt(settings.shard_path(acme.shard_id))
    reports, refused = ingest_files(
        settings, [write_csv(drop / "g2.csv", [event(3000 + i, customer_id="globex") for i in range(5)])]
    )
    assert refused == [] and reports[0].accepted == 5  # the other customer's ingest works
    both = [event(4000, customer_id="globex"), event(4001)]
    reports, refused = ingest_files(settings, [write_csv(drop / "both2.csv", both)])
    (problem,) = refused
    assert isinstance(problem, PartlyStored)
    assert "acme" in str(problem) and acme.shard_id in str(problem) and "restore" in str(problem)
    with shards.shard_connection(settings, "globex", read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (26,)  # globex's rows were stored
    capsys.readouterr()
    code = main(["ingest", str(write_csv(drop / "a3.csv", [event(5000)]))])
    err = capsys.readouterr().err
    assert code != 0 and "acme" in err and acme.shard_id in err and "Traceback" not in err


def test_retention_runs_per_shard(settings: Settings, drop: Path) -> None:
    seed_headcount(settings, GLOBEX)
    rows = [event(0, occurred_on="2020-01-05"), event(1)]
    rows += [
        event(10, customer_id="globex", occurred_on="2020-02-05", client_ref="G-OLD"),
        event(11, customer_id="globex"),
    ]
    ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    report = purge_older_than(settings, 24, today=__import__("datetime").date(2025, 6, 1))
    assert (report.events_deleted, report.pseudonyms_deleted) == (2, 2)  # one event and one person in each shard
    for customer in ("acme", "globex"):
        with shards.shard_connection(settings, customer, read_only=True) as con:
            assert con.execute("SELECT count(*), min(occurred_on) >= DATE '2023-06-01' FROM events").fetchone() == (
                1,
                True,
            )


def test_key_rotation_reencrypts_the_catalog_and_every_shard(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_customers(settings, drop)
    before = store_snapshot(settings)
    old_master = read_key_file(settings.raw_key_file)
    old_keys = {c: _key(settings, _shard(settings, c)) for c in ("acme", "globex")}
    seen: list[str] = []

    def stop_at_second_copy(name: str) -> None:
        seen.append(name)
        if name == "copy checked" and seen.count(name) == 2:
            raise RuntimeError("interrupted")

    monkeypatch.setattr(key_rotation, "_stage", stop_at_second_copy)
    with pytest.raises(RuntimeError, match="interrupted"):
        key_rotation.rotate_raw_key(settings)  # the first shard is swapped, the second is not
    monkeypatch.undo()
    monkeypatch.setenv("WELLBEING_HOME", str(settings.home))
    rotation = key_rotation.rotate_raw_key(settings)
    assert rotation.resumed
    new_master = read_key_file(settings.raw_key_file)
    assert new_master != old_master
    assert not _opens(settings.catalog_path, old_master) and _opens(settings.catalog_path, new_master)
    for customer in ("acme", "globex"):
        shard = _shard(settings, customer)
        path = settings.shard_path(shard.shard_id)
        assert not _opens(path, old_keys[customer]) and _opens(path, _key(settings, shard))
    after = store_snapshot(settings)
    assert {t: v for t, v in after.items() if t != "store_meta"} == {
        t: v for t, v in before.items() if t != "store_meta"
    }
    reports, refused = ingest_files(settings, [write_csv(drop / "later.csv", [event(9000)])])
    assert refused == [] and reports[0].accepted == 1
