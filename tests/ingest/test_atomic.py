"""Atomicity: a process killed in the middle of a file's transaction leaves the store as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_helpers import event, events, query, store_snapshot, write_csv

from pipeline.ingest import ingest_files
from pipeline.ingest.load import PAUSE_MARKER, TEST_PAUSE_ENV
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_sigkill_mid_transaction_leaves_store_unchanged(settings: Settings, drop: Path) -> None:
    ingest_files(settings, [write_csv(drop / "a.csv", events(500))])
    before = store_snapshot(settings)
    # b replaces 100 stored events, adds 5000 new ones (of new people too) and has a quarantined row.
    rows = [
        event(i, duration_min="5", **({"client_ref": f"NEW-{i % 11}"} if i >= 3000 else {})) for i in range(400, 5500)
    ]
    rows.append(event(9999, who5_raw="99"))
    b = write_csv(drop / "b.csv", rows)
    env = dict(os.environ, **{TEST_PAUSE_ENV: "60", "WELLBEING_HOME": str(settings.home)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "ingest", str(b)],
        cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if PAUSE_MARKER in line or not line:
                break
        assert PAUSE_MARKER in line, "loader never reached the paused transaction"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert store_snapshot(settings) == before
    # and the store still works: the same file goes in completely afterwards
    reports, refused = ingest_files(settings, [b])
    assert refused == [] and (reports[0].accepted, reports[0].replaced, reports[0].quarantined) == (5100, 100, 1)
    assert query(settings, "SELECT count(*), count(DISTINCT pseudonym) FROM pseudonyms") == [(18, 18)]


@pytest.mark.parametrize("fail_at", ["INSERT INTO events", "INSERT INTO quarantine", "INSERT INTO deliveries"])
def test_error_inside_transaction_rolls_back(settings: Settings, drop: Path, fail_at: str) -> None:
    """An exception after the events insert (here: a failing statement) rolls the whole file back."""
    import pipeline.ingest.load as load

    ingest_files(settings, [write_csv(drop / "a.csv", events(5))])
    before = store_snapshot(settings)

    class Failing:
        def __init__(self, con) -> None:
            self._con = con

        def execute(self, sql: str, *args):
            if sql.startswith(fail_at):
                raise RuntimeError("simulated crash")
            return self._con.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self._con, name)

    from pipeline.ingest import load_pseudonym_key
    from pipeline.shards import shard_connection

    key = load_pseudonym_key(settings)
    with shard_connection(settings, "acme") as con, pytest.raises(RuntimeError, match="simulated crash"):
        rows = [event(i, client_ref=f"NEW-{i}") for i in range(3, 13)]  # new people: pseudonyms inserted first
        rows.append(event(99, who5_raw="99"))  # a bad row: the quarantine insert runs only when there is one
        load.ingest_file(Failing(con), write_csv(drop / "b.csv", rows), key)  # type: ignore[arg-type]
    assert store_snapshot(settings) == before
