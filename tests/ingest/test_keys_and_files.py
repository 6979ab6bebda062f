"""Keys outside the data folder, key folder permissions, key rotation (completed and interrupted),
owner-only landing and archive files, archives expiring with the raw data, key-free dashboards parent."""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path

import duckdb
import pytest
from ingest_helpers import events, query, seed_headcount, store_snapshot, write_csv

import pipeline.key_rotation as key_rotation
from pipeline.cli import main
from pipeline.ingest import ingest_files
from pipeline.keys import RAW_KEY_ENV
from pipeline.raw_store import RawStoreError, RawStoreKeyError, connect_raw, load_httpfs
from pipeline.retention import purge_older_than
from pipeline.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _opens_with(path: Path, key: str) -> bool:
    con = duckdb.connect()
    try:
        load_httpfs(con)
        con.execute(f"ATTACH '{path}' AS probe (ENCRYPTION_KEY $key, READ_ONLY)", {"key": key})
        return True
    except duckdb.Error as exc:
        assert "encryption key" in str(exc).lower()
        return False
    finally:
        con.close()


# -- keys outside the data folder and key folder permissions -----------------------------------


@pytest.mark.no_seed
def test_keys_outside_the_data_folder(
    wb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop: Path
) -> None:
    secrets = tmp_path / "mounted-secret"
    monkeypatch.setenv("WELLBEING_KEY_DIR", str(secrets))
    settings = Settings.from_env()
    seed_headcount(settings)
    assert ingest_files(settings, [write_csv(drop / "d.csv", events(3))])[0][0].accepted == 3
    assert sorted(p.name for p in secrets.iterdir()) == ["customers", "pseudonym.key", "raw.key"]
    assert [p.suffix for p in (secrets / "customers").iterdir()] == [".key"]  # acme's key share
    assert _mode(secrets) == 0o700 and _mode(secrets / "raw.key") == 0o600
    assert not (wb_home / "keys").exists()  # a copy of the data folder carries no key
    monkeypatch.delenv("WELLBEING_KEY_DIR")
    with pytest.raises(RawStoreKeyError, match="no key"):
        connect_raw(Settings.from_env())


def test_keys_folder_open_to_others_is_refused(
    settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = store_snapshot(settings)
    settings.keys_dir.chmod(0o777)
    try:
        assert main(["ingest", str(write_csv(drop / "d.csv", events(2)))]) == 2
        err = capsys.readouterr().err
        assert f"key folder {settings.keys_dir} is open to other users (mode 777); run: chmod 700" in err
        assert "Traceback" not in err
    finally:
        settings.keys_dir.chmod(0o700)
    assert store_snapshot(settings) == before


def test_missing_key_is_exit_2_for_every_command(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings.raw_key_file.unlink()
    for argv in (["budget"], ["release", "--customer", "acme", "--period", "2025-03"], ["quarantine"], ["purge"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "no key" in err and "Traceback" not in err


# -- rotation ------------------------------------------------------------------------------------


def _rotated_store(settings: Settings, drop: Path) -> dict[str, list[tuple]]:
    ingest_files(settings, [write_csv(drop / "d.csv", events(20))])
    return store_snapshot(settings)


def test_rotation_reencrypts_and_the_old_key_no_longer_opens_the_file(settings: Settings, drop: Path) -> None:
    before = _rotated_store(settings, drop)
    old = settings.raw_key_file.read_text().strip()
    assert main(["keys", "rotate"]) == 0
    new = settings.raw_key_file.read_text().strip()
    assert new != old and _mode(settings.raw_key_file) == 0o600
    assert not _opens_with(settings.catalog_path, old) and _opens_with(settings.catalog_path, new)
    assert store_snapshot(settings) == before | {"store_meta": store_snapshot(settings)["store_meta"]}
    assert query(settings, "SELECT count(*) FROM store_meta WHERE key = 'raw_key_rotated_at'") == [(1,)]
    (retired,) = (settings.keys_dir / "retired").iterdir()
    assert retired.read_text().strip() == old and _mode(retired) == 0o600  # retired, kept for old backups
    log = (settings.keys_dir / "rotations.log").read_text()
    assert key_rotation.fingerprint(old) in log and key_rotation.fingerprint(new) in log and old not in log
    assert not key_rotation.next_key_file(settings).exists() and not key_rotation.next_store_file(settings).exists()


class _Interrupted(Exception):
    pass


@pytest.mark.parametrize("stage", ["next key written", "copy checked", "store replaced"])
def test_interrupted_rotation_loses_nothing_and_finishes_when_run_again(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    before = _rotated_store(settings, drop)
    old = settings.raw_key_file.read_text().strip()

    def stop(name: str) -> None:
        if name == stage:
            raise _Interrupted(name)

    monkeypatch.setattr(key_rotation, "_stage", stop)
    with pytest.raises(_Interrupted):
        key_rotation.rotate_raw_key(settings)
    if stage == "store replaced":  # after the commit: the store is under the next key
        with pytest.raises(RawStoreError, match="key rotation .* was interrupted: run `wellbeing keys rotate`"):
            connect_raw(settings)
    else:  # before the commit: the store is untouched and still opens with the old key
        assert _opens_with(settings.catalog_path, old)
        assert store_snapshot(settings) == before
    monkeypatch.undo()
    monkeypatch.setenv("WELLBEING_HOME", str(settings.home))
    rotation = key_rotation.rotate_raw_key(settings)
    assert rotation.resumed is (stage == "store replaced")
    assert not _opens_with(settings.catalog_path, old)
    after = store_snapshot(settings)
    assert {t: v for t, v in after.items() if t != "store_meta"} == {
        t: v for t, v in before.items() if t != "store_meta"
    }


def test_rotation_refuses_a_key_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(RAW_KEY_ENV, "k" * 32)
    assert main(["keys", "rotate"]) == 2
    assert "rotate it where it is kept" in capsys.readouterr().err


# -- landing and archive files ---------------------------------------------------------------------


def test_archive_and_landing_are_owner_only_and_archives_expire(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WELLBEING_LANDING_AFTER_INGEST", "archive")
    settings = Settings.from_env()
    settings.ensure_dirs()
    good = write_csv(settings.landing_dir / "good.csv", events(3))
    os.utime(good, (1e9, 1e9))  # an export written in 2001: retention counts from the archiving
    bad = write_csv(settings.landing_dir / "bad.csv", [dict(r, email="x@y.z") for r in events(1)])
    for path in (good, bad):
        path.chmod(0o644)
    ingest_files(settings, [good, bad])
    (archived,) = settings.archive_dir.iterdir()
    assert _mode(settings.archive_dir) == 0o700 and _mode(settings.landing_dir) == 0o700
    assert _mode(archived) == 0o600 and _mode(bad) == 0o600  # refused files stay, owner-only
    assert purge_older_than(settings, 24).archive_files_deleted == 0
    assert purge_older_than(settings, 24, today=date(2100, 1, 1)).archive_files_deleted == 1
    assert not archived.exists()


def test_wider_landing_folder_is_made_owner_only(settings: Settings) -> None:
    settings.ensure_dirs()
    settings.landing_dir.chmod(0o755)
    settings.archive_dir.chmod(0o777)
    settings.ensure_dirs()
    assert _mode(settings.landing_dir) == 0o700 and _mode(settings.archive_dir) == 0o700


# -- dashboards ------------------------------------------------------------------------------------


def test_dashboards_parent_drops_the_keys_before_starting_the_server(
    wb_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.commands.dashboards as dashboards

    monkeypatch.setenv(RAW_KEY_ENV, "r" * 32)
    monkeypatch.setenv("WELLBEING_PSEUDONYM_KEY", "p" * 32)
    monkeypatch.setenv("WELLBEING_KEY_DIR", str(wb_home.parent / "secrets"))
    seen: dict[str, object] = {}

    def call(argv: list[str], env: dict[str, str]) -> int:
        seen["parent"] = {k for k in os.environ if k.startswith("WELLBEING_") and k.endswith("_KEY")}
        seen["child"] = {k for k in env if k.startswith("WELLBEING_") and ("_KEY" in k)}
        return 0

    monkeypatch.setattr(dashboards.subprocess, "call", call)
    assert main(["dashboards", "--port", "8599"]) == 0
    assert seen == {"parent": set(), "child": set()}
