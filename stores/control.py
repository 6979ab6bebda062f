"""The control store (``control.duckdb``): release policy values, their history, release requests.

The control store (``control.duckdb``) is written by privacy officers (``wellbeing policy
set``, the privacy-officer dashboard) and read by the next release. It holds **no
personal data**: policy keys and values, who changed them and when, and release
requests naming only a customer, periods and the requester. The pipeline (CLI, Dagster
runs and sensors) and the dashboards open it with :func:`control_connection`, for one short
operation each (a DuckDB reader blocks writers; :func:`stores.connect.connect_with_retry`
waits briefly for the holder). Every other function takes an open connection.

Privacy reason: a policy change is validated through :mod:`privacy.policy` before it is
stored (a nonsensical ``k`` or ε is refused), recorded with who / when / old / new, and
applies to *future* releases only: a stored release keeps the policy version it was
drawn under. A valid but risky value (``z = 0``, ``k`` below 5, an annual ε above 10:
:func:`privacy.policy.policy_warnings`) is accepted only with its warning recorded beside the
change, so the history shows who accepted which risk. Values an earlier version stored with
keys that no longer exist (the per-release budget) are read as their documented translation
(``apply_policy_updates(..., legacy=True)``), never as a larger budget.

Policy versions: every change gets the next global version number; the effective
version of a customer is the highest version of a change to the default (scope ``'*'``)
or to that customer (``0`` when nothing was ever changed).

>>> import duckdb
>>> con = duckdb.connect()
>>> ensure_control_schema(con)
>>> set_policy_value(con, "k", "12", customer_id="acme", changed_by="po").new_value
'12'
>>> policy, version = current_policy(con, "acme")
>>> policy.k, version, current_policy(con, None)[0].k
(12, 1, 10)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from privacy.periods import parse_period
from privacy.policy import (
    DEFAULT_POLICY,
    PolicyError,
    ReleasePolicy,
    apply_policy_updates,
    parse_policy_value,
    policy_to_flat,
    policy_warnings,
)
from stores.connect import DEFAULT_TIMEOUT, connect_with_retry
from stores.paths import HomePaths
from stores.published import polars_schema

__all__ = [
    "DEFAULT_SCOPE",
    "REQUEST_STATUSES",
    "PolicyChange",
    "ReleaseRequest",
    "control_connection",
    "ensure_control_schema",
    "current_policy",
    "policy_overrides",
    "set_policy_value",
    "set_policy_values",
    "policy_history",
    "request_release",
    "list_release_requests",
    "claim_pending_requests",
    "update_request_status",
]

DEFAULT_SCOPE = "*"
REQUEST_STATUSES: tuple[str, ...] = ("pending", "running", "done", "refused", "failed")

CONTROL_DDL = """
CREATE TABLE IF NOT EXISTS policy_values (
    scope       VARCHAR NOT NULL,     -- '*' (default) or a customer_id
    key         VARCHAR NOT NULL,     -- a key of privacy.policy.POLICY_KEYS
    value       VARCHAR NOT NULL,     -- canonical text of the parsed value
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS policy_history (
    changed_at     TIMESTAMP NOT NULL,
    changed_by     VARCHAR NOT NULL,
    scope          VARCHAR NOT NULL,
    key            VARCHAR NOT NULL,
    old_value      VARCHAR,
    new_value      VARCHAR NOT NULL,
    policy_version INTEGER NOT NULL,
    warning        VARCHAR            -- the risk the change accepted (privacy.policy.policy_warnings), if any
);
CREATE TABLE IF NOT EXISTS release_requests (
    request_id    VARCHAR PRIMARY KEY,
    customer_id   VARCHAR NOT NULL,
    periods       VARCHAR,            -- JSON list of period labels; NULL = every due period
    requested_by  VARCHAR NOT NULL,
    requested_at  TIMESTAMP NOT NULL,
    status        VARCHAR NOT NULL,   -- pending | running | done | refused | failed
    message       VARCHAR,
    updated_at    TIMESTAMP NOT NULL
);
"""

# The published store's ``policy_history`` is this table, copied as it is.
_HISTORY_SCHEMA = polars_schema("policy_history")
_REQUEST_SCHEMA: dict[str, Any] = {
    "request_id": pl.String,
    "customer_id": pl.String,
    "periods": pl.String,
    "requested_by": pl.String,
    "requested_at": pl.Datetime("us"),
    "status": pl.String,
    "message": pl.String,
    "updated_at": pl.Datetime("us"),
}


@dataclass(frozen=True)
class PolicyChange:
    """One recorded policy change (a row of ``policy_history``)."""

    changed_at: datetime
    changed_by: str
    scope: str
    key: str
    old_value: str | None
    new_value: str
    policy_version: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleaseRequest:
    """A privacy officer's request to release a customer's periods (``None`` = every due period)."""

    request_id: str
    customer_id: str
    periods: list[str] | None
    requested_by: str
    requested_at: datetime


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _has_tables(con: duckdb.DuckDBPyConnection, *names: str) -> bool:
    found = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = current_schema()"
        ).fetchall()
    }
    return all(n in found for n in names)


def ensure_control_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the control tables if they do not exist (idempotent; needs a read-write connection)."""
    con.execute(CONTROL_DDL)
    # a store written before warnings were recorded
    con.execute("ALTER TABLE policy_history ADD COLUMN IF NOT EXISTS warning VARCHAR")


@contextmanager
def control_connection(
    store: HomePaths | Path, *, read_only: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the control store (of ``store``'s home, or the file ``store``) for one short operation.

    A read-write connection creates the file and its schema if needed. A read-only
    connection to a store that does not exist yet is an empty in-memory database, so readers
    see the defaults (the readers here tolerate missing tables). While another process holds
    the file, :func:`~stores.connect.connect_with_retry` waits up to ``timeout`` seconds, then
    raises :class:`~stores.connect.StoreBusy`.
    """
    path = store.control if isinstance(store, HomePaths) else Path(store)
    if read_only and not path.exists():
        con = duckdb.connect()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = connect_with_retry(lambda: duckdb.connect(str(path), read_only=read_only), path, timeout=timeout)
        if not read_only:
            try:
                ensure_control_schema(con)
            except BaseException:
                con.close()
                raise
    try:
        yield con
    finally:
        con.close()


# -- policy ---------------------------------------------------------------------------------------
def _text(value: object) -> str:
    return str(value)


def _scope(customer_id: str | None) -> str:
    if customer_id is None:
        return DEFAULT_SCOPE
    customer = str(customer_id).strip()
    if not customer or customer == DEFAULT_SCOPE:
        raise PolicyError(f"invalid customer id {customer_id!r} for a policy scope")
    return customer


def policy_overrides(con: duckdb.DuckDBPyConnection, customer_id: str | None) -> dict[str, str]:
    """The stored values of one scope (``None`` = the default scope) as ``key -> text``."""
    if not _has_tables(con, "policy_values"):
        return {}
    rows = con.execute(
        "SELECT key, value FROM policy_values WHERE scope = ? ORDER BY key", [_scope(customer_id)]
    ).fetchall()
    return {k: v for k, v in rows}


def _policy_version(con: duckdb.DuckDBPyConnection, customer_id: str | None) -> int:
    if not _has_tables(con, "policy_history"):
        return 0
    scopes = [DEFAULT_SCOPE] if customer_id is None else [DEFAULT_SCOPE, _scope(customer_id)]
    row = con.execute(
        "SELECT coalesce(max(policy_version), 0) FROM policy_history WHERE list_contains(?, scope)", [scopes]
    ).fetchone()
    return int(row[0]) if row else 0


def _effective(default_values: dict[str, str], customer_values: dict[str, str]) -> ReleasePolicy:
    policy = DEFAULT_POLICY
    if default_values:
        policy = apply_policy_updates(policy, default_values, legacy=True)
    if customer_values:
        policy = apply_policy_updates(policy, customer_values, legacy=True)
    return policy


def current_policy(con: duckdb.DuckDBPyConnection, customer_id: str | None) -> tuple[ReleasePolicy, int]:
    """The effective policy (defaults overlaid with the customer's overrides) and its version.

    ``customer_id=None`` gives the default policy. Works on a read-only connection and on
    a store whose tables do not exist yet (then: :data:`DEFAULT_POLICY`, version 0).
    """
    default_values = policy_overrides(con, None)
    customer_values = policy_overrides(con, customer_id) if customer_id is not None else {}
    return _effective(default_values, customer_values), _policy_version(con, customer_id)


def set_policy_value(
    con: duckdb.DuckDBPyConnection,
    key: str,
    text_value: str,
    *,
    customer_id: str | None,
    changed_by: str,
) -> PolicyChange:
    """Validate and store one policy value; record it in ``policy_history``; applies to future releases.

    Without ``customer_id`` the default changes (for every customer without an override of
    ``key``). The resulting policy of the scope, and of every customer that inherits the
    default, must validate as a whole; otherwise :class:`~privacy.policy.PolicyError`
    explains which and nothing is stored. A warning the change brings is recorded with it.
    """
    return set_policy_values(con, {key: text_value}, customer_id=customer_id, changed_by=changed_by)[0]


def set_policy_values(
    con: duckdb.DuckDBPyConnection,
    values: dict[str, str],
    *,
    customer_id: str | None,
    changed_by: str,
) -> list[PolicyChange]:
    """:func:`set_policy_value` for several keys at once: one validation, one new policy version.

    The what-if tuner's "apply" uses it, so a chosen policy is stored whole or not at all.
    Keys whose value does not change are left out; each changed key gets a history row.
    """
    if not str(changed_by or "").strip():
        raise PolicyError("a policy change must name who made it (changed_by)")
    if not values:
        raise PolicyError("no policy value to set")
    scope = _scope(customer_id)
    parsed = {key: _text(parse_policy_value(key, text)) for key, text in values.items()}  # unknown / unparsable
    ensure_control_schema(con)
    con.execute("BEGIN TRANSACTION")
    try:
        default_values = policy_overrides(con, None)
        if scope == DEFAULT_SCOPE:
            new_default = {**default_values, **parsed}
            old_policy = _effective(default_values, {})
            new_policy = _effective(new_default, {})  # the default itself must validate
            for other in _customer_scopes(con):
                try:
                    _effective(new_default, policy_overrides(con, other))
                except PolicyError as exc:
                    what = ", ".join(f"{k}={v}" for k, v in parsed.items())
                    raise PolicyError(f"the new default {what} is invalid for customer {other}: {exc}") from None
        else:
            customer_values = policy_overrides(con, scope)
            old_policy = _effective(default_values, customer_values)
            new_policy = _effective(default_values, {**customer_values, **parsed})
        old_flat = policy_to_flat(old_policy)
        changed = {k: v for k, v in parsed.items() if _text(old_flat[k]) != v}
        if not changed:
            raise PolicyError("nothing to change: the policy already has these values")
        warnings = tuple(w for w in policy_warnings(new_policy) if w not in policy_warnings(old_policy))
        version_row = con.execute("SELECT coalesce(max(policy_version), 0) + 1 FROM policy_history").fetchone()
        version = int(version_row[0]) if version_row else 1
        changed_at = _now()
        out = []
        for key, new_text in changed.items():
            con.execute(
                "INSERT OR REPLACE INTO policy_values (scope, key, value) VALUES (?, ?, ?)", [scope, key, new_text]
            )
            con.execute(
                "INSERT INTO policy_history (changed_at, changed_by, scope, key, old_value, new_value, policy_version,"
                " warning) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    changed_at,
                    changed_by,
                    scope,
                    key,
                    _text(old_flat[key]),
                    new_text,
                    version,
                    "; ".join(warnings) or None,
                ],
            )
            out.append(
                PolicyChange(changed_at, changed_by, scope, key, _text(old_flat[key]), new_text, version, warnings)
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return out


def _customer_scopes(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT scope FROM policy_values WHERE scope <> ? ORDER BY scope", [DEFAULT_SCOPE]
    ).fetchall()
    return [r[0] for r in rows]


def policy_history(con: duckdb.DuckDBPyConnection, customer_id: str | None = None) -> pl.DataFrame:
    """Recorded changes, newest first; with ``customer_id``: the default's and that customer's.

    Columns: ``changed_at, changed_by, scope, key, old_value, new_value, policy_version,
    warning`` (the ``policy_history`` table of the published store).
    """
    if not _has_tables(con, "policy_history"):
        return pl.DataFrame(schema=_HISTORY_SCHEMA)
    has_warning = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
        "AND table_name = 'policy_history' AND column_name = 'warning'"
    ).fetchone()
    warning = "warning" if has_warning and has_warning[0] else "NULL::VARCHAR AS warning"  # an older, read-only store
    query = (
        f"SELECT changed_at, changed_by, scope, key, old_value, new_value, policy_version, {warning} "
        "FROM policy_history"
    )
    params: list[object] = []
    if customer_id is not None:
        query += " WHERE scope IN (?, ?)"
        params = [DEFAULT_SCOPE, _scope(customer_id)]
    query += " ORDER BY policy_version DESC"
    return pl.DataFrame(con.execute(query, params).fetchall(), schema=_HISTORY_SCHEMA, orient="row")


# -- release requests -----------------------------------------------------------------------------
def request_release(
    con: duckdb.DuckDBPyConnection, customer_id: str, periods: Iterable[str] | None, requested_by: str
) -> str:
    """Queue a release request (status ``'pending'``); the pipeline's sensor picks it up. Returns its id.

    Period labels are validated here so that a typo is refused at once, not by the pipeline later.
    """
    customer = _scope(customer_id)
    if not str(requested_by or "").strip():
        raise ValueError("a release request must name who asked (requested_by)")
    labels = None if periods is None else [parse_period(p).label for p in periods]
    if labels is not None and not labels:
        raise ValueError("periods is an empty list: pass None to release every due period")
    ensure_control_schema(con)
    request_id = uuid.uuid4().hex
    now = _now()
    con.execute(
        "INSERT INTO release_requests VALUES (?, ?, ?, ?, ?, 'pending', NULL, ?)",
        [request_id, customer, None if labels is None else json.dumps(labels), requested_by, now, now],
    )
    return request_id


def list_release_requests(con: duckdb.DuckDBPyConnection, customer_id: str | None = None) -> pl.DataFrame:
    """Release requests, newest first (``periods`` as JSON text; NULL = every due period)."""
    if not _has_tables(con, "release_requests"):
        return pl.DataFrame(schema=_REQUEST_SCHEMA)
    query = "SELECT * FROM release_requests"
    params: list[object] = []
    if customer_id is not None:
        query += " WHERE customer_id = ?"
        params = [customer_id]
    query += " ORDER BY requested_at DESC, request_id"
    return pl.DataFrame(con.execute(query, params).fetchall(), schema=_REQUEST_SCHEMA, orient="row")


def claim_pending_requests(con: duckdb.DuckDBPyConnection) -> list[ReleaseRequest]:
    """Atomically mark every pending request ``'running'`` and return them (oldest first)."""
    if not _has_tables(con, "release_requests"):
        return []
    con.execute("BEGIN TRANSACTION")
    try:
        rows = con.execute(
            "UPDATE release_requests SET status = 'running', updated_at = ? WHERE status = 'pending' "
            "RETURNING request_id, customer_id, periods, requested_by, requested_at",
            [_now()],
        ).fetchall()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    claimed = [ReleaseRequest(r[0], r[1], None if r[2] is None else list(json.loads(r[2])), r[3], r[4]) for r in rows]
    return sorted(claimed, key=lambda r: (r.requested_at, r.request_id))


def update_request_status(con: duckdb.DuckDBPyConnection, request_id: str, status: str, message: str | None) -> None:
    """Set a request's status (one of :data:`REQUEST_STATUSES`) and a short, aggregate-only message."""
    if status not in REQUEST_STATUSES:
        raise ValueError(f"unknown request status {status!r}; use one of {', '.join(REQUEST_STATUSES)}")
    ensure_control_schema(con)
    updated = con.execute(
        "UPDATE release_requests SET status = ?, message = ?, updated_at = ? WHERE request_id = ? RETURNING 1",
        [status, message, _now(), request_id],
    ).fetchall()
    if not updated:
        raise ValueError(f"no release request with id {request_id!r}")
