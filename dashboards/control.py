"""Policy edits and release requests, through :mod:`privacy.policy_store` on the control store.

Privacy reason: the control store holds no personal data; edits never touch the release
stores. Each call opens ``control.duckdb`` for one operation and closes it, so the pipeline
(which reads policies and updates request status) is never locked out for long.
Only privacy officers may write; the role is checked here, not only in the pages.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import duckdb
import polars as pl

from dashboards.config import dashboard_paths
from dashboards.principal import Principal
from privacy import policy_store
from privacy.policy import DEFAULT_POLICY, ReleasePolicy


class NotAllowed(PermissionError):
    """The principal's role may not perform this control action."""


@contextmanager
def _control(read_only: bool = False, attempts: int = 20) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A short-lived connection to the control store; retries briefly while the pipeline holds the lock."""
    path = dashboard_paths().control
    if read_only and not path.exists():
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(attempts):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:  # lock held by another process
            last = exc
            time.sleep(0.1)
    else:
        raise RuntimeError(f"the control store {path} is busy; try again in a moment ({last})")
    try:
        if not read_only:
            policy_store.ensure_control_schema(con)
        yield con
    finally:
        con.close()


def _require_officer(principal: Principal) -> None:
    if principal is None or principal.role != "privacy_officer":
        raise NotAllowed("only privacy officers can change the policy or request releases")


def current_policy(customer_id: str | None = None) -> tuple[ReleasePolicy, int]:
    """The live policy for ``customer_id`` (or the default); public information, no login needed."""
    try:
        with _control(read_only=True) as con:
            if con is None:
                return DEFAULT_POLICY, 0
            return policy_store.current_policy(con, customer_id)
    except duckdb.CatalogException:  # control store exists but has no schema yet
        return DEFAULT_POLICY, 0


def current_policies(customer_ids: list[str]) -> dict[str, tuple[ReleasePolicy, int]]:
    """The live policy of several customers on one short-lived connection."""
    try:
        with _control(read_only=True) as con:
            if con is None:
                return {c: (DEFAULT_POLICY, 0) for c in customer_ids}
            return {c: policy_store.current_policy(con, c) for c in customer_ids}
    except duckdb.CatalogException:
        return {c: (DEFAULT_POLICY, 0) for c in customer_ids}


def set_policy_value(principal: Principal, key: str, text_value: str, *, customer_id: str | None):
    """Record one validated policy change (who, when, old, new); applies to future releases only."""
    _require_officer(principal)
    with _control() as con:
        return policy_store.set_policy_value(
            con, key, text_value, customer_id=customer_id, changed_by=principal.username
        )


def policy_history(principal: Principal, customer_id: str | None = None) -> pl.DataFrame:
    """The control store's change log (privacy officers)."""
    _require_officer(principal)
    with _control() as con:
        return policy_store.policy_history(con, customer_id)


def request_release(principal: Principal, customer_id: str, periods: list[str] | None) -> str:
    """Queue a release request for the pipeline (the dashboard holds no key to carry it out)."""
    _require_officer(principal)
    with _control() as con:
        return policy_store.request_release(con, customer_id, periods, principal.username)


def release_requests(principal: Principal, customer_id: str | None = None) -> pl.DataFrame:
    """Release requests and their status (privacy officers)."""
    _require_officer(principal)
    with _control() as con:
        return policy_store.list_release_requests(con, customer_id)
