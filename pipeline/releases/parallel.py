"""Customers released side by side in worker processes (``wellbeing release --all-due --workers N``).

Each customer's raw data lives in its own encrypted shard (:mod:`pipeline.shards`), so the
releases of two customers share no file and no lock: a task opens one shard, draws, stores
its draws with their ledger rows in one transaction and writes that customer's published
part, exactly as the one-process run does; the parent publishes once at the end.

Privacy: workers are pipeline processes on the same machine, started with ``spawn`` (never
``fork``, which would copy polars' and DuckDB's thread pools mid-flight) and given only what
the task names (settings, the customer's shard entry, its policy). What comes back is the
release outcome: status, period, cost and counts, never a cell value or a record.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

from pipeline.preload import preload

T = TypeVar("T")
R = TypeVar("R")

MAX_DEFAULT_WORKERS = 8


def default_workers(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """One worker per core this process may use (at most ``MAX_DEFAULT_WORKERS``).

    The cores it may run on, further limited by a container's CPU quota (cgroup v2 ``cpu.max``,
    e.g. a Kubernetes pod's CPU limit), which the affinity mask does not show.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit readable: the affinity mask
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def in_workers(
    fn: Callable[..., R], tasks: Iterable[tuple[Any, ...]], workers: int, *, preload_modules: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], Future[R]]]:
    """Run ``fn(*task)`` for every task in ``workers`` spawned processes; yield each (task, future) as it ends.

    Each worker first imports ``preload_modules`` with the garbage collector paused, then freezes
    them (:mod:`pipeline.preload`).

    Tasks are submitted in the order given (put the largest first: the last task then finishes
    near the others). When the consumer stops early (an exception, ``break``, Ctrl-C), the tasks
    not yet started are cancelled and the running ones are waited for, so no worker outlives the
    call and none is cut off inside its work: Ctrl-C reaches the parent only
    (:func:`_leave_interrupts`).
    """
    pending_tasks = list(tasks)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(pending_tasks) or 1)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(preload_modules,),
    ) as pool:
        running = {pool.submit(fn, *task): task for task in pending_tasks}
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield running.pop(future), future
        finally:
            for future in running:
                future.cancel()


def _start_worker(modules: tuple[str, ...]) -> None:
    """A worker's start: Ctrl-C left to the parent, the task's heavy modules preloaded and frozen."""
    _leave_interrupts()
    preload(modules)


def _leave_interrupts() -> None:
    """In a worker: ignore Ctrl-C (SIGINT goes to the whole process group); the parent decides.

    An interrupt inside polars or OpenDP surfaces as a library error, not as KeyboardInterrupt, so a
    worker that heard it would fall back to drawing one by one instead of stopping. The parent stops
    handing out tasks and waits for the running ones, which end as usual (each chunk of releases is
    stored in its own transaction, or not at all).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
