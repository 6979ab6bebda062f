"""Short-lived connections to the control store (``$WELLBEING_HOME/control.duckdb``).

The control store holds policy values, policy history and release requests, never
personal data (API in :mod:`privacy.policy_store`). Several processes touch it (CLI,
the privacy-officer dashboard, the Dagster sensor); DuckDB lets only one of them hold
the file at a time (a read-only holder blocks writers too), so every user opens it
for one short operation and retries briefly while another holds the lock.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import duckdb

from privacy.policy_store import ensure_control_schema
from pipeline.settings import Settings

LOCK_RETRY_SECONDS = 10.0


class ControlStoreBusy(RuntimeError):
    """The control store stayed locked by another process for longer than the retry window."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflicting" in text


@contextmanager
def control_connection(
    settings: Settings, *, read_only: bool = False, timeout: float = LOCK_RETRY_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``control.duckdb`` for one short operation, retrying while another process holds it.

    A read-write connection creates the file and its schema if needed. A read-only
    connection on a store that does not exist yet opens an in-memory database instead,
    so readers see the defaults (the :mod:`privacy.policy_store` readers tolerate missing tables).
    """
    path = settings.control_path
    if read_only and not path.exists():
        con = duckdb.connect()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise ControlStoreBusy(
                        f"the control store {path} is held by another process for more than {timeout:.0f} s; "
                        "retry when the other command has finished"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        if not read_only:
            ensure_control_schema(con)
    try:
        yield con
    finally:
        con.close()
