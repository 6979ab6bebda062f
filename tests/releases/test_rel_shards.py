"""Releases on per-customer shards: corrupt-shard isolation, concurrent publishers, removal from the
published store, and the one-time migration of a legacy single raw store written by the code
before shards (its source is taken from git, so the legacy layout is the real one)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest
from release_helpers import CUSTOMERS, ROOT, published, run_cli

from pipeline import shards
from pipeline.keys import KEY_ENV_VARS, read_key_file
from pipeline.raw_store import load_httpfs
from pipeline.releases.lifecycle import run_all_due, run_release
from pipeline.settings import Settings

A, B = CUSTOMERS


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), 97):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupt_shard_stops_only_its_customer(rsettings: Settings) -> None:
    shard = shards.find_shard(rsettings, A)
    _corrupt(rsettings.shard_path(shard.shard_id))
    assert run_release(rsettings, B, "2025-03", requested_by="t").status == "published"
    outcomes = run_all_due(rsettings, "scheduler", today=date(2025, 4, 10))
    failed = [o for o in outcomes if o.status == "failed"]
    assert [o.customer_id for o in failed] == [A]
    assert shard.shard_id in failed[0].message and "restore" in failed[0].message
    assert {o.customer_id for o in outcomes if o.status == "published"} == {B}
    proc = run_cli("release", "--customer", A, "--period", "2025-03", env_home=rsettings.home)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert A in proc.stderr and shard.shard_id in proc.stderr
    proc = run_cli("release", "--customer", B, "--period", "2025-02", env_home=rsettings.home, check_rc=0)


def test_two_publishers_in_two_processes_lose_no_release(rsettings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV_VARS}
    env["WELLBEING_HOME"] = str(rsettings.home)
    cmd = [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())", "release"]
    procs = [
        subprocess.Popen(
            [*cmd, "--customer", c, "--period", "2025-03"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for c in (A, B)
    ]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    assert published(rsettings, "SELECT customer_id, period FROM releases ORDER BY 1") == [
        (A, "2025-03"),
        (B, "2025-03"),
    ]


def test_removing_a_customer_removes_its_releases_from_the_published_store(rsettings: Settings) -> None:
    run_all_due(rsettings, "scheduler", today=date(2025, 3, 10))
    before = published(rsettings, "SELECT DISTINCT customer_id FROM budget_ledger ORDER BY 1")
    assert before == [(A,), (B,)]
    run_cli("customer", "remove", A, "--yes", env_home=rsettings.home, check_rc=0)
    for table in ("releases", "release_cells", "budget_ledger", "public_headcount", "release_allocations"):
        assert published(rsettings, f"SELECT DISTINCT customer_id FROM {table}") == [(B,)], table
    assert run_release(rsettings, B, "2025-02", requested_by="t").status == "served_stored"


# -- migration of a legacy single store ----------------------------------------------------------

LEGACY_COMMIT = "b047f955900f7cf5c416f0e17185f43c3c52247c"  # the last commit with one raw.duckdb for all
LEGACY_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import date
    from pathlib import Path
    from pipeline.ingest import ingest_files
    from pipeline.releases.lifecycle import run_all_due
    from pipeline.settings import Settings
    from pipeline.synthetic import generate

    base = Path(sys.argv[1])
    files = generate(base / "gen", customers=2, employees=600, months=4, seed=5, start="2025-01")
    settings = Settings.from_env(base / "home")
    reports, refused = ingest_files(settings, [*files.events, *files.headcounts])
    assert reports and not refused
    outcomes = run_all_due(settings, "legacy", today=date(2025, 4, 10))
    assert outcomes and all(o.status == "published" for o in outcomes)
    assert settings.raw_path.exists()
    """
)
LEDGER = "SELECT entry_id, customer_id, period, release_id, kind, rho, epsilon, delta FROM budget_ledger ORDER BY ALL"
DRAWS = "SELECT * FROM release_draws ORDER BY ALL"
CELLS = "SELECT * FROM release_draw_cells ORDER BY ALL"
PEOPLE = "SELECT DISTINCT e.customer_id, p.employee, p.pseudonym FROM events e JOIN pseudonyms p USING (employee) ORDER BY ALL"


@pytest.fixture(scope="module")
def legacy_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home written by the legacy code (raw.duckdb with two customers, their releases drawn)."""
    base = tmp_path_factory.mktemp("legacy")
    src = base / "src"
    src.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", LEGACY_COMMIT, "pipeline", "privacy", "stores"], capture_output=True
    )
    if archive.returncode != 0:  # a shallow clone: the same layout, built from today's shards
        return _legacy_from_shards(base)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    env = {k: v for k, v in os.environ.items() if k not in (*KEY_ENV_VARS, "WELLBEING_HOME")}
    env["PYTHONPATH"] = str(src)
    proc = subprocess.run(
        [sys.executable, "-c", LEGACY_SCRIPT, str(base)], cwd=base, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base / "home"


def _legacy_from_shards(base: Path) -> Path:
    """A legacy home without the legacy code (shallow clones): today's ingest and releases, then
    every shard's rows and the catalog's file-level rows put into one ``raw.duckdb`` under the
    master key (the single-store layout: the same tables, all customers), shards and shares gone.
    """
    import shutil

    from pipeline.ingest import ingest_files
    from pipeline.raw_store import RAW_DDL
    from pipeline.releases.release_store import RELEASE_DDL
    from pipeline.synthetic import generate

    files = generate(base / "gen", customers=2, employees=600, months=4, seed=5, start="2025-01")
    settings = Settings.from_env(base / "home")
    saved = {v: os.environ.pop(v) for v in (*KEY_ENV_VARS, "WELLBEING_HOME") if v in os.environ}
    try:
        reports, refused = ingest_files(settings, [*files.events, *files.headcounts])
        assert reports and not refused
        outcomes = run_all_due(settings, "legacy", today=date(2025, 4, 10))
        assert outcomes and all(o.status == "published" for o in outcomes)
        master = read_key_file(settings.raw_key_file)
        parts = [
            (settings.shard_path(sh.shard_id), shards.shard_key(settings, sh)) for sh in shards.live_shards(settings)
        ]
        con = duckdb.connect()
        load_httpfs(con)
        con.execute(f"ATTACH '{settings.raw_path}' AS legacy (ENCRYPTION_KEY $k)", {"k": master})
        con.execute("USE legacy")
        con.execute(RAW_DDL + RELEASE_DDL)
        con.execute(f"ATTACH '{settings.catalog_path}' AS cat (ENCRYPTION_KEY $k, READ_ONLY)", {"k": master})
        con.execute("INSERT INTO legacy.deliveries SELECT * FROM cat.deliveries")
        con.execute("INSERT INTO legacy.quarantine SELECT * FROM cat.quarantine")
        con.execute("INSERT INTO legacy.store_meta SELECT * FROM cat.store_meta WHERE key = 'pseudonym_key_check'")
        tables = [t for t in shards._customer_filters() if t != "deliveries"]
        for path, key in parts:  # (read before raw.duckdb existed: its presence starts a migration)
            con.execute(f"ATTACH '{path}' AS s (ENCRYPTION_KEY $k, READ_ONLY)", {"k": key})
            # Surrogate ids and ledger entries were one sequence each for the whole legacy store:
            # this shard's follow the last ones already copied.
            (people,) = con.execute("SELECT coalesce(max(employee), 0) FROM legacy.pseudonyms").fetchone()  # type: ignore[misc]
            (entries,) = con.execute("SELECT coalesce(max(entry_id), 0) FROM legacy.budget_ledger").fetchone()  # type: ignore[misc]
            shift = {"events": ("employee", people), "pseudonyms": ("employee", people),
                     "budget_ledger": ("entry_id", entries)}  # fmt: skip
            for table in tables:
                column, by = shift.get(table, ("", 0))
                select = f"* REPLACE ({column} + {int(by)} AS {column})" if column else "*"
                con.execute(f"INSERT INTO legacy.{table} BY NAME SELECT {select} FROM s.{table}")
            con.execute(
                "INSERT OR REPLACE INTO legacy.store_meta SELECT * FROM s.store_meta WHERE key NOT IN "
                "(SELECT key FROM legacy.store_meta)"
            )
            con.execute("DETACH s")
        con.execute("DETACH cat")
        con.close()
        for folder in (settings.shards_dir, settings.keys_dir / "customers", settings.published_parts_dir):
            shutil.rmtree(folder, ignore_errors=True)
        assert settings.raw_path.exists()
    finally:
        os.environ.update(saved)
    return base / "home"


def _legacy_rows(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        load_httpfs(con)
        key = read_key_file(settings.raw_key_file)
        con.execute(f"ATTACH '{settings.raw_path}' AS raw (ENCRYPTION_KEY $k, READ_ONLY)", {"k": key})
        con.execute("USE raw")
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def legacy(legacy_template: Path, wb_home: Path) -> Settings:
    import shutil

    shutil.copytree(legacy_template, wb_home)
    return Settings.from_env()


def _snapshot(settings: Settings) -> dict[str, list[tuple]]:
    from pipeline.raw_store import raw_connection

    with raw_connection(settings, read_only=True) as con:
        return {name: con.execute(sql).fetchall() for name, sql in (("ledger", LEDGER), ("draws", DRAWS),
                ("cells", CELLS), ("people", PEOPLE))}  # fmt: skip


def test_legacy_store_is_migrated_without_losing_a_ledger_row_or_a_draw(legacy: Settings) -> None:
    before = {n: _legacy_rows(legacy, q) for n, q in (("ledger", LEDGER), ("draws", DRAWS), ("cells", CELLS),
              ("people", PEOPLE))}  # fmt: skip
    (events,) = _legacy_rows(legacy, "SELECT count(*) FROM events")[0]
    published_before = published(legacy, "SELECT * FROM release_cells ORDER BY ALL")
    assert before["ledger"] and before["draws"]
    proc = run_cli("shards", "migrate", env_home=legacy.home, check_rc=0)
    assert "migrated 2 customer(s)" in proc.stdout
    assert not legacy.raw_path.exists()
    assert _snapshot(legacy) == before  # pseudonyms and ids as they were; every ledger row and draw
    for customer in shards.customers(legacy):
        with shards.shard_connection(legacy, customer, read_only=True) as con:
            assert con.execute("SELECT DISTINCT customer_id FROM events").fetchall() == [(customer,)]
            assert con.execute("SELECT DISTINCT customer_id FROM budget_ledger").fetchall() == [(customer,)]
    from pipeline.raw_store import raw_connection

    with raw_connection(legacy, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (events,)
    assert published(legacy, "SELECT * FROM release_cells ORDER BY ALL") == published_before
    # re-running a stored release serves the stored draw: the noise was drawn once
    (release_id,) = [r[3] for r in before["ledger"] if r[1] == A and r[2] == "2025-02"]
    outcome = run_release(legacy, A, "2025-02", requested_by="t")
    assert outcome.status == "served_stored" and outcome.release_id == release_id and outcome.cost is None
    assert _snapshot(legacy)["ledger"] == before["ledger"]
    run_cli("shards", "migrate", env_home=legacy.home, check_rc=0)  # nothing left to migrate


def test_an_interrupted_migration_is_run_again_safely(legacy: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {n: _legacy_rows(legacy, q) for n, q in (("ledger", LEDGER), ("draws", DRAWS), ("cells", CELLS),
              ("people", PEOPLE))}  # fmt: skip
    calls: list[str] = []

    def stop_at_second_customer(name: str) -> None:
        calls.append(name)
        if len(calls) == 2:
            raise RuntimeError("interrupted")

    monkeypatch.setattr(shards, "_stage", stop_at_second_customer)
    with pytest.raises(RuntimeError, match="interrupted"):
        shards.migrate_legacy(legacy)
    assert legacy.raw_path.exists()  # the legacy file is kept until every customer is verified
    monkeypatch.undo()
    monkeypatch.setenv("WELLBEING_HOME", str(legacy.home))
    outcome = run_release(legacy, B, "2025-03", requested_by="t")  # any write path finishes the migration
    assert outcome.status == "served_stored"
    assert not legacy.raw_path.exists()
    assert _snapshot(legacy) == before


def test_a_release_of_a_customer_removed_meanwhile_is_never_published(rsettings: Settings) -> None:
    """A removal in another process while a release runs: the destroyed key share decides, not the timing."""
    from pipeline.releases.publish import merge_published, part_path, write_part

    assert run_release(rsettings, A, "2025-02", requested_by="t").status == "published"
    shard = shards.find_shard(rsettings, A)
    con = shards.open_shard(rsettings, shard)
    try:
        rsettings.customer_key_file(shard.shard_id).unlink()  # the removal shredded the share meanwhile
        with pytest.raises(shards.ShardError, match="removed while its release ran"):
            write_part(rsettings, con, shard)
    finally:
        con.close()
    assert part_path(rsettings, shard.shard_id).exists()  # written before: the removal deletes it, or ...
    merge_published(rsettings)  # ... a merge skips a part whose share is gone
    assert published(rsettings, "SELECT count(*) FROM releases WHERE customer_id = ?", [A]) == [(0,)]


def test_a_merge_without_the_key_folder_keeps_the_published_store(rsettings: Settings, tmp_path: Path) -> None:
    """A process with the wrong WELLBEING_KEY_DIR must not publish every customer's releases away."""
    from pipeline.releases.publish import PublishRefused, merge_published

    assert run_release(rsettings, B, "2025-02", requested_by="t").status == "published"
    before = published(rsettings, "SELECT count(*) FROM releases")
    elsewhere = Settings(home=rsettings.home, key_dir=tmp_path / "other-keys")
    with pytest.raises(PublishRefused, match="no customer key share"):
        merge_published(elsewhere)
    assert published(rsettings, "SELECT count(*) FROM releases") == before
