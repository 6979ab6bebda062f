"""Policy edits and release requests, through :mod:`stores.control` on the control store.

Privacy reason: the control store holds no personal data; edits never touch the release
stores. Each call opens ``control.duckdb`` for one operation and closes it, so the pipeline
(which reads policies and updates request status) is never locked out for long.
Only privacy officers may write; the role is checked here, not only in the pages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb
import polars as pl

from privacy.policy import DEFAULT_POLICY, ReleasePolicy
from stores import control as policy_store
from stores.control import control_connection
from stores.paths import home_paths
from stores.principal import Principal

# DuckDB shares one database instance per file within a process: two sessions (threads) opening
# control.duckdb at once conflict ("write-write conflict on create" from the schema check, or
# "different configuration" when one is read-only and the other read-write). The dashboards
# therefore use the file one operation at a time; operations are short (one statement or two).
_CONTROL_LOCK = threading.Lock()


@contextmanager
def _control(read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    with _CONTROL_LOCK, control_connection(home_paths(), read_only=read_only) as con:
        yield con


class NotAllowed(PermissionError):
    """The principal's role may not perform this control action."""


def _require_officer(principal: Principal) -> None:
    if principal is None or principal.role != "privacy_officer":
        raise NotAllowed("only privacy officers can change the policy or request releases")


def _control_stamp() -> tuple[str, int, int, int, int]:
    """Identity of the control store's contents now: the file's and its WAL's (inode or size, mtime)."""
    path = home_paths().control
    out: list[int] = []
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            st = p.stat()
            out += [st.st_ino ^ st.st_size, st.st_mtime_ns]
        except FileNotFoundError:
            out += [0, 0]
    return (str(path), out[0], out[1], out[2], out[3])


# Policies read per control-store stamp: {stamp: {customer or None: (policy, version)}}. Public values
# (policy is public by design), shared by every session. One stamp is kept: a change of the file
# makes the next render read afresh.
_POLICIES: dict[tuple[str, int, int, int, int], dict[str | None, tuple[ReleasePolicy, int]]] = {}


def _policies_at(
    customer_ids: list[str | None], stamp: tuple[str, int, int, int, int]
) -> dict[str | None, tuple[ReleasePolicy, int]]:
    """The stored policy of each of ``customer_ids`` when the control store had ``stamp``.

    Misses are read under the control lock, all in one connection (opening the file costs about
    30 ms), and a session that waited for the lock finds what the previous one read: twenty
    sessions rendering after a change open the file once, not twenty times per customer.
    """
    known = _POLICIES.get(stamp, {})
    if all(c in known for c in customer_ids):
        return {c: known[c] for c in customer_ids}
    with _CONTROL_LOCK:
        known = dict(_POLICIES.get(stamp, {}))
        missing = [c for c in dict.fromkeys(customer_ids) if c not in known]
        if missing:
            try:
                with control_connection(home_paths(), read_only=True) as con:
                    for c in missing:
                        known[c] = policy_store.current_policy(con, c)
            except duckdb.CatalogException:  # control store exists but has no schema yet
                known.update({c: (DEFAULT_POLICY, 0) for c in missing})
            _POLICIES.clear()
            _POLICIES[stamp] = known
    return {c: known[c] for c in customer_ids}


def current_policy(customer_id: str | None = None) -> tuple[ReleasePolicy, int]:
    """The live policy for ``customer_id`` (or the default); public information, no login needed."""
    return _policies_at([customer_id], _control_stamp())[customer_id]


def current_policies(customer_ids: list[str]) -> dict[str, tuple[ReleasePolicy, int]]:
    """The live policy of several customers (read once per change of the control store)."""
    found = _policies_at(list(customer_ids), _control_stamp())
    return {c: found[c] for c in customer_ids}


def set_policy_value(
    principal: Principal, key: str, text_value: str, *, customer_id: str | None
) -> policy_store.PolicyChange:
    """Record one validated policy change (who, when, old, new); applies to future releases only."""
    _require_officer(principal)
    with _control() as con:
        return policy_store.set_policy_value(
            con, key, text_value, customer_id=customer_id, changed_by=principal.username
        )


def set_policy_values(
    principal: Principal, values: dict[str, str], *, customer_id: str | None
) -> list[policy_store.PolicyChange]:
    """Record several validated policy changes as one new version (the what-if tuner's "apply")."""
    _require_officer(principal)
    with _control() as con:
        return policy_store.set_policy_values(con, values, customer_id=customer_id, changed_by=principal.username)


# Officer-only reads (policy history, release requests) by control-store stamp: the role is checked
# before the cache is consulted. {(what, customer): (stamp, frame)}.
_READS: dict[tuple[str, str | None], tuple[tuple[str, int, int, int, int], pl.DataFrame]] = {}


def _read_at(
    what: str, customer_id: str | None, read: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]
) -> pl.DataFrame:
    """``read`` on a read-only open of the control store, once per change of the file (single flight)."""
    stamp = _control_stamp()
    hit = _READS.get((what, customer_id))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    with _CONTROL_LOCK:
        hit = _READS.get((what, customer_id))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with control_connection(home_paths(), read_only=True) as con:
            frame = read(con)
        if len(_READS) > 256:
            _READS.clear()
        _READS[(what, customer_id)] = (stamp, frame)
        return frame


def policy_history(principal: Principal, customer_id: str | None = None) -> pl.DataFrame:
    """The control store's change log (privacy officers)."""
    _require_officer(principal)
    return _read_at("policy_history", customer_id, lambda con: policy_store.policy_history(con, customer_id))


def request_release(principal: Principal, customer_id: str, periods: list[str] | None) -> str:
    """Queue a release request for the pipeline (the dashboard holds no key to carry it out)."""
    _require_officer(principal)
    with _control() as con:
        return policy_store.request_release(con, customer_id, periods, principal.username)


def release_requests(principal: Principal, customer_id: str | None = None) -> pl.DataFrame:
    """Release requests and their status (privacy officers)."""
    _require_officer(principal)
    return _read_at("release_requests", customer_id, lambda con: policy_store.list_release_requests(con, customer_id))
