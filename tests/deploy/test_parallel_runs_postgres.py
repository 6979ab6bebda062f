"""Per-customer parallel releases with the real daemon, on the production (Postgres) and demo instances.

The production path end to end, on one machine: ``deploy/dagster.yaml`` (Postgres storage from
environment variables, queued runs, the per-customer run tag limit and the pools) over a
throwaway PostgreSQL server; a privacy officer's release requests for two customers × two months
in the control store; ``dagster-daemon run`` evaluates ``release_request_sensor``, which submits
one run per customer-month, and the run queue launches them (each run a process of its own).

Asserted from the Postgres event log: two different customers' release steps ran at the same
time (overlapping windows), the two runs of one customer never overlapped, and all four
releases were published.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from deploy_helpers import CUSTOMERS, Postgres

from pipeline.instance import CUSTOMER_RUN_TAG, DAGSTER_YAML
from pipeline.keys import KEY_ENV_VARS
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MONTHS = ("2025-02", "2025-03")
RELEASE_STEP = "customer_month_release"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

pytestmark = pytest.mark.slow


def _window(instance: dg.DagsterInstance, run_id: str, step: str | None) -> tuple[float, float]:
    """(start, end) timestamps of a step (or of the whole run) from the instance's event log."""
    start_type, end_types = (
        (dg.DagsterEventType.STEP_START, {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE})
        if step
        else (dg.DagsterEventType.RUN_START, {dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE})
    )
    start = end = None
    for record in instance.all_logs(run_id, of_type={start_type, *end_types}):
        if step and record.step_key != step:
            continue
        assert record.dagster_event is not None
        if record.dagster_event.event_type == start_type:
            start = record.timestamp
        else:
            end = record.timestamp
    assert start is not None and end is not None, (run_id, step)
    return start, end


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the daemon and everything it started (its own process group, by id)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # children that outlived the daemon share its group
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("instance_kind", ["postgres", "demo"])
def test_two_customers_release_side_by_side_one_customer_never_overlaps(
    instance_kind: str,
    ingested_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """``postgres``: deploy/dagster.yaml over a throwaway PostgreSQL; ``demo``: the demo's instance
    (pipeline.instance.DAGSTER_YAML, SQLite under DAGSTER_HOME), i.e. what ``make dev`` runs."""
    from stores.control import control_connection, request_release

    home = tmp_path / "home"
    shutil.copytree(ingested_home, home)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    if instance_kind == "postgres":
        postgres: Postgres = request.getfixturevalue("postgres")
        deploy_config = (DEPLOY / "dagster.yaml").read_text(encoding="utf-8")  # the production instance
        database_env = postgres.env()
    else:
        deploy_config = re.sub(r"max_concurrent_runs: \d+\n", "max_concurrent_runs: 4\n", DAGSTER_YAML)
        database_env = {}
    assert re.search(r"max_concurrent_runs: 4\n", deploy_config)
    (dagster_home / "dagster.yaml").write_text(deploy_config, encoding="utf-8")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_module:\n      module_name: pipeline.definitions\n"
        f"      working_directory: {ROOT}\n      location_name: wellbeing\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV_VARS and k != "WELLBEING_KEY_DIR"}
    env.update(database_env, DAGSTER_HOME=str(dagster_home), WELLBEING_HOME=str(home))
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    with dg.DagsterInstance.get() as instance:
        from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

        postgres_backed = isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert postgres_backed == isinstance(instance.run_storage, PostgresRunStorage) == (instance_kind == "postgres")
        instance.add_dynamic_partitions("customers", list(CUSTOMERS))
        instance.add_dynamic_partitions("months", [f"{m}-01" for m in ("2025-01", *MONTHS)])
        with control_connection(Settings.from_env()) as control:  # what the privacy officers' dashboard writes
            # one request per customer-month, customers interleaved: the sensor submits the runs in
            # this order, so both customers' first runs are queued together
            request_ids = [request_release(control, c, [m], "privacy-officer@test") for m in MONTHS for c in CUSTOMERS]

        def request_runs() -> list[dg.DagsterRun]:
            return [
                r
                for rid in request_ids
                for r in instance.get_runs(filters=dg.RunsFilter(tags={"wellbeing/release_request": rid}))
            ]

        def until(done: Callable[[list[dg.DagsterRun]], bool], daemon: subprocess.Popen[bytes], seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not done(request_runs()):
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text(errors="replace")[-3000:]
                time.sleep(0.5)

        def start_daemon() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        n_runs = len(CUSTOMERS) * len(MONTHS)
        log = (tmp_path / "daemon.log").open("wb")
        # 1. The queue closed (max_concurrent_runs: 0): the sensor submits the four runs, which wait.
        #    (So the test does not depend on when each submission meets a dequeue tick.)
        config = dagster_home / "dagster.yaml"
        config.write_text(
            deploy_config.replace("max_concurrent_runs: 4\n", "max_concurrent_runs: 0\n"), encoding="utf-8"
        )
        daemon = start_daemon()
        try:
            until(lambda rs: len(rs) == n_runs, daemon, 120)
        finally:
            _stop(daemon)
        assert {r.status for r in request_runs()} == {dg.DagsterRunStatus.QUEUED}
        # 2. The production instance, verbatim: the queue admits one run per customer at a time.
        config.write_text(deploy_config, encoding="utf-8")
        started = time.time()
        daemon = start_daemon()
        try:
            until(lambda rs: len(rs) == n_runs and all(r.status in FINISHED for r in rs), daemon, 240)
        finally:
            _stop(daemon)
            log.close()
        runs = request_runs()
        daemon_log = (tmp_path / "daemon.log").read_text(errors="replace")
        assert len(runs) == 4, daemon_log[-3000:]
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), (
            [(r.tags.get("dagster/partition"), r.status) for r in runs],
            daemon_log[-3000:],
        )

        for run in sorted(runs, key=lambda r: r.tags["dagster/partition"]):  # the timeline, shown with -s
            events = [
                f"{r.dagster_event.event_type_value}@{r.timestamp - started:.1f}"
                for r in instance.all_logs(run.run_id)
                if r.dagster_event is not None
                and r.dagster_event.event_type_value
                in {
                    "PIPELINE_ENQUEUED",
                    "PIPELINE_STARTING",
                    "PIPELINE_START",
                    "STEP_START",
                    "STEP_SUCCESS",
                    "PIPELINE_SUCCESS",
                }
            ]
            print(run.tags["dagster/partition"], " ".join(events))
        by_customer: dict[str, list[tuple[float, float]]] = {c: [] for c in CUSTOMERS}
        run_windows: dict[str, list[tuple[float, float]]] = {c: [] for c in CUSTOMERS}
        for run in runs:
            customer = run.tags[CUSTOMER_RUN_TAG]  # Dagster tags every partitioned run with its customer
            by_customer[customer].append(_window(instance, run.run_id, RELEASE_STEP))
            run_windows[customer].append(_window(instance, run.run_id, None))

    def fmt(w: tuple[float, float]) -> str:
        return f"{datetime.fromtimestamp(w[0]):%H:%M:%S.%f}..{datetime.fromtimestamp(w[1]):%H:%M:%S.%f}"

    report = {c: [fmt(w) for w in sorted(ws)] for c, ws in by_customer.items()}
    print("release step windows:", report)  # shown with -s: the measured overlap
    a, b = CUSTOMERS
    cross = max(_overlap(x, y) for x in by_customer[a] for y in by_customer[b])
    print(f"largest overlap of two customers' release steps: {cross:.2f} s")
    assert cross > 0, f"no two customers' release steps overlapped: {report}"
    for customer, windows in run_windows.items():  # one in-progress run per customer: whole runs apart
        first, second = sorted(windows)
        assert _overlap(first, second) <= 0, f"{customer}'s two runs overlapped: {report}"

    published = duckdb.connect(str(home / "published.duckdb"), read_only=True)
    try:
        rows = published.execute("SELECT customer_id, period FROM releases ORDER BY 1, 2").fetchall()
    finally:
        published.close()
    assert {(c, m) for c in CUSTOMERS for m in MONTHS} <= set(rows)
