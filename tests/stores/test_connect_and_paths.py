"""One lock-retry policy (``stores.connect``) and the shared file names (``stores.paths``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from stores.connect import StoreBusy, connect_with_retry, is_lock_conflict
from stores.control import control_connection, current_policy
from stores.paths import home_paths

LOCK = duckdb.IOException('Could not set lock on file "x.duckdb": Conflicting lock is held in python (PID 1)')


def test_a_lock_conflict_is_retried_until_it_clears() -> None:
    calls = []

    def open_once() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise LOCK
        return "open"

    assert connect_with_retry(open_once, "x.duckdb", timeout=5, first_delay=0.001) == "open"
    assert len(calls) == 3


def test_any_other_error_is_raised_at_once() -> None:
    calls = []

    def open_once() -> None:
        calls.append(1)
        raise duckdb.IOException("Wrong encryption key used to open the database file")

    with pytest.raises(duckdb.IOException, match="Wrong encryption key"):
        connect_with_retry(open_once, "x.duckdb", timeout=5)
    assert calls == [1] and not is_lock_conflict(duckdb.IOException("Invalid block header"))


def test_a_lasting_conflict_raises_store_busy_naming_the_file() -> None:
    def open_once() -> None:
        raise LOCK

    with pytest.raises(StoreBusy, match="x.duckdb") as busy:
        connect_with_retry(open_once, "x.duckdb", timeout=0.05, first_delay=0.01)
    assert "PID" not in str(busy.value) and "retry" in str(busy.value)


def test_a_real_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "control.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusy), control_connection(path, timeout=0.3):
            pass
    finally:
        holder.communicate("", timeout=30)
    with control_connection(path, read_only=True) as con:  # released: opens at once
        assert current_policy(con, None)[1] == 0


def test_home_paths_name_only_the_shared_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WELLBEING_HOME", str(tmp_path))
    paths = home_paths()
    assert paths.home == tmp_path.resolve()
    assert {p.name for p in (paths.published, paths.control, paths.auth_file, paths.audit)} == {
        "published.duckdb",
        "control.duckdb",
        "auth.yaml",
        "audit.duckdb",
    }
    assert not any(name.startswith("raw") for name in dir(paths))
