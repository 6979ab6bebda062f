"""One lock-retry policy for every DuckDB file the product opens.

DuckDB allows one process to hold a database file for writing, and even a read-only holder
blocks a writer. The CLI, the Dagster runs, the sensors and the dashboards therefore open
each file for one short operation, and whoever finds it held waits briefly:

* only a **lock conflict** is retried (any other error, e.g. a wrong key or a damaged file,
  is raised at once);
* the wait doubles from ``first_delay`` up to ``max_delay`` between attempts, until
  ``timeout`` seconds have passed;
* then :class:`StoreBusy` is raised, naming the file and what to do. Its message never
  quotes DuckDB's text (which names the holding process), only the file.

>>> import duckdb
>>> con = connect_with_retry(lambda: duckdb.connect(), "an in-memory store")
>>> con.execute("SELECT 42").fetchone()
(42,)
>>> is_lock_conflict(duckdb.IOException('Could not set lock on file "x.duckdb": Conflicting lock is held'))
True
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
# DuckDB: 'IO Error: Could not set lock on file "...": Conflicting lock is held in ... (PID ...)'.
_LOCK_CONFLICT = re.compile(r"\block\b|conflicting", re.IGNORECASE)


class StoreBusy(RuntimeError):
    """A store stayed locked by another process for longer than the retry window; nothing was done."""

    def __init__(self, store: str | Path, timeout: float) -> None:
        self.store = str(store)
        self.timeout = timeout
        super().__init__(
            f"the store {store} is held by another process for more than {timeout:.0f} s; "
            "nothing was changed: retry when the other command or pipeline run has finished"
        )


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether a DuckDB error says another process (or connection) holds the file's lock."""
    if not isinstance(exc, duckdb.Error):
        return False
    return bool(_LOCK_CONFLICT.search(str(exc)))


def connect_with_retry(
    open_once: Callable[[], T],
    store: str | Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    first_delay: float = 0.05,
    max_delay: float = 0.5,
) -> T:
    """Call ``open_once()`` until it does not fail on a DuckDB lock conflict; return its result.

    ``open_once`` is any callable that opens (``duckdb.connect(path, read_only=...)``) or
    attaches (``ATTACH ... (ENCRYPTION_KEY $key)``) one file. Only a lock conflict is
    retried, with exponential back-off from ``first_delay`` to ``max_delay`` seconds, for at
    most ``timeout`` seconds; then :class:`StoreBusy` names ``store`` and what to do. Every
    other error propagates unchanged on the first attempt.
    """
    deadline = time.monotonic() + timeout
    delay = first_delay
    while True:
        try:
            return open_once()
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusy(store, timeout) from None
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
