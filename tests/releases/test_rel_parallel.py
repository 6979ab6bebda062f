"""``run_all_due(workers=N)``: customers released side by side in spawned processes, same guarantees.

Each task is the one-process steps for one customer on its own shard; the parent publishes once.
Checked here: the same releases, costs and ledger rows as one process; drawn once (a second run
draws nothing); a broken shard stops only its customer; a customer that raises still lets what was
stored be published; and the command line's ``--workers``.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from release_helpers import CUSTOMERS, published, run_cli

from pipeline import shards
from pipeline.releases import lifecycle
from pipeline.releases.lifecycle import ReleaseOutcome, run_all_due
from pipeline.releases.parallel import default_workers, in_workers
from pipeline.settings import Settings

A, B = CUSTOMERS
TODAY = date(2025, 7, 10)  # every month and both quarters of the template are complete


def _summary(outcomes: list[ReleaseOutcome]) -> list[tuple[object, ...]]:
    return [(o.customer_id, o.period, o.status, o.cells, o.cost) for o in outcomes]


def _ledger(settings: Settings) -> list[tuple[object, ...]]:
    return published(
        settings, "SELECT customer_id, period, kind, rho, requested_by FROM budget_ledger ORDER BY customer_id, period"
    )


def test_two_workers_release_what_one_process_releases(rsettings: Settings, tmp_path: Path) -> None:
    twin = Settings.from_env(tmp_path / "twin")
    shutil.copytree(rsettings.home, twin.home)
    heard: list[ReleaseOutcome] = []
    parallel = run_all_due(rsettings, "scheduler", today=TODAY, workers=2, on_outcome=heard.append)
    serial = run_all_due(twin, "scheduler", today=TODAY, workers=1)
    assert _summary(parallel) == _summary(serial)  # same releases, order, cell counts and costs
    assert len(parallel) == 2 * 8 and all(o.status == "published" for o in parallel)
    assert sorted(_summary(heard)) == sorted(_summary(parallel))  # progress heard every outcome
    assert _ledger(rsettings) == _ledger(twin)
    ids = published(rsettings, "SELECT release_id FROM releases ORDER BY release_id")
    assert len(ids) == 16 and {o.release_id for o in parallel} == {r[0] for r in ids}
    # drawn once: nothing is due any more, and the stored draws are what is published
    assert run_all_due(rsettings, "scheduler", today=TODAY, workers=2) == []
    assert published(rsettings, "SELECT release_id FROM releases ORDER BY release_id") == ids


def test_a_corrupt_shard_stops_only_its_customer_in_parallel(rsettings: Settings) -> None:
    shard = shards.find_shard(rsettings, A)
    path = rsettings.shard_path(shard.shard_id)
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), 97):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    outcomes = run_all_due(rsettings, "scheduler", today=TODAY, workers=2)
    failed = [o for o in outcomes if o.status == "failed"]
    assert [o.customer_id for o in failed] == [A] and shard.shard_id in failed[0].message
    assert {o.customer_id for o in outcomes if o.status == "published"} == {B}
    assert published(rsettings, "SELECT DISTINCT customer_id FROM releases") == [(B,)]


def test_a_customer_that_raises_still_publishes_what_was_stored(
    rsettings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process (in a worker, the same exception comes back through its future)."""
    real = lifecycle._all_due_of_customer

    def raise_for_a(settings: Settings, shard: shards.Shard, *args: object) -> list[ReleaseOutcome]:
        if shard.customer_id == A:
            raise RuntimeError("boom")
        return real(settings, shard, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(lifecycle, "_all_due_of_customer", raise_for_a)
    with pytest.raises(RuntimeError, match="boom"):
        run_all_due(rsettings, "scheduler", today=TODAY, customers=[B, A])
    assert published(rsettings, "SELECT DISTINCT customer_id FROM releases") == [(B,)]


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


def test_in_workers_yields_every_result_and_raises_a_workers_exception() -> None:
    results = {task: future for task, future in in_workers(_square, [(1,), (2,), (3,)], workers=2)}
    assert {t: f.result() for t, f in results.items() if t != (3,)} == {(1,): 1, (2,): 4}
    with pytest.raises(ValueError, match="three"):
        results[(3,)].result()
    assert 1 <= default_workers() <= 8


def _sigint_ignored() -> bool:
    import signal

    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_workers_leave_ctrl_c_to_the_parent() -> None:
    """SIGINT reaches the whole process group; only the parent acts on it (it waits for the running tasks)."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    assert [f.result() for _, f in in_workers(_sigint_ignored, [()], workers=1)] == [True]
    assert signal.getsignal(signal.SIGINT) is before  # the parent's own handling is left as it was


def test_default_workers_follow_a_containers_cpu_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # a pod limited to 1.5 CPUs
    assert default_workers(cpu_max) == min(2, default_workers(tmp_path / "absent"))
    cpu_max.write_text("50000 100000\n")
    assert default_workers(cpu_max) == 1
    cpu_max.write_text("max 100000\n")  # no limit: the cores of the affinity mask
    assert default_workers(cpu_max) == default_workers(tmp_path / "absent")


def test_cli_workers_option(rsettings: Settings) -> None:
    proc = run_cli("release", "--all-due", "--workers", "0", env_home=rsettings.home, check_rc=2)
    assert "from 1" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("release", "--all-due", "--workers", "two", env_home=rsettings.home, check_rc=2)
    assert "whole number" in proc.stderr
    proc = run_cli("release", "--customer", A, "--period", "2025-03", "--workers", "2", env_home=rsettings.home)
    assert proc.returncode == 2 and "goes with --all-due" in proc.stderr
    out = run_cli("release", "--all-due", "--workers", "2", env_home=rsettings.home, check_rc=0).stdout
    assert "released, 0 refused for budget" in out
    assert {r[0] for r in published(rsettings, "SELECT DISTINCT customer_id FROM releases")} == {A, B}


def test_a_long_backlog_is_drawn_and_stored_in_chunks(
    rsettings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CHUNK_RELEASES at a time (bounded memory): the same releases, costs and ledger as one piece."""
    twin = Settings.from_env(tmp_path / "twin")
    shutil.copytree(rsettings.home, twin.home)
    whole = run_all_due(twin, "scheduler", today=TODAY)
    stored: list[int] = []
    real = lifecycle.store_draws

    def counting(con: object, draws: list[object], **kwargs: object) -> list[int]:
        stored.append(len(draws))
        return real(con, draws, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lifecycle, "CHUNK_RELEASES", 3)
    monkeypatch.setattr(lifecycle, "store_draws", counting)
    chunked = run_all_due(rsettings, "scheduler", today=TODAY)
    assert stored == [3, 3, 2, 3, 3, 2]  # 8 releases per customer, one transaction per chunk
    assert _summary(chunked) == _summary(whole)
    assert _ledger(rsettings) == _ledger(twin)


def test_preload_imports_then_freezes_with_the_collector_back_on() -> None:
    """A release's heavy modules are loaded before its work and kept out of later collections."""
    import gc
    import subprocess
    import sys

    code = (
        "import gc, sys; from pipeline.preload import RELEASE_MODULES, preload; preload(RELEASE_MODULES); "
        "print(gc.isenabled(), gc.get_freeze_count() > 100_000, 'opendp.extras.polars' in sys.modules, "
        "'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True", "True"]
    assert gc.isenabled()
    from pipeline.cli import build_parser

    args = build_parser().parse_args(["release", "--all-due"])
    assert args.preload  # the CLI preloads before a release
