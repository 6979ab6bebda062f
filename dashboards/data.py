"""The only data-access layer of the dashboards: read-only, short-lived reads of the published store.

Privacy reasons:

* Tenant isolation lives here, not in the pages: every function takes the signed-in
  :class:`~stores.principal.Principal`; an ``hr`` principal only ever gets rows of its own
  ``customer_id`` whatever arguments are passed (another customer raises :class:`AccessDenied`).
* Only ``published.duckdb`` is opened, ``read_only=True``, for the duration of one query
  (a read-only holder would block the pipeline's writer), and only aggregates live there.
* The published tables are read once per publish (:func:`_snapshot`); every query takes its
  rows from there through the role and tenant filters. Its cache key includes the principal's
  scope and the file's identity stamp, so a frame is never served to another principal and a
  newly swapped-in store is seen.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import polars as pl
import streamlit as st

from stores import published
from stores.paths import home_paths
from stores.principal import Principal

METRICS: tuple[str, ...] = (
    "engaged_employees", "uptake_rate", "contacts",
    "wellbeing_low_share", "wellbeing_improved_share", "who5_mean", "satisfaction_mean",
)  # fmt: skip
# Outcome figures (means and shares of people with scores): HR and the privacy officer only.
WELLBEING_METRICS: tuple[str, ...] = (
    "wellbeing_low_share",
    "wellbeing_improved_share",
    "who5_mean",
    "satisfaction_mean",
)

# Which roles may read which published table (tenant scope is applied on top).
TABLE_ROLES: dict[str, frozenset[str]] = {
    "releases": frozenset({"hr", "provider", "privacy_officer"}),
    "release_cells": frozenset({"hr", "provider", "privacy_officer"}),
    "public_headcount": frozenset({"hr", "provider", "privacy_officer"}),
    "release_allocations": frozenset({"hr", "privacy_officer"}),
    "budget_ledger": frozenset({"privacy_officer"}),
    "policy_history": frozenset({"privacy_officer"}),
}


# The provider sees use of its service and its own quality measure (satisfaction with it), never
# its customers' wellbeing outcomes (WHO-5 mean, low / improved shares).
PROVIDER_METRICS: tuple[str, ...] = ("engaged_employees", "uptake_rate", "contacts", "satisfaction_mean")


class AccessDenied(PermissionError):
    """The principal asked for data outside its role or tenant; nothing is returned."""


def customer_scope(principal: Principal, customer_id: str | None = None) -> tuple[str, ...] | None:
    """The customers a query may touch: ``(own,)`` for ``hr``; the requested one or ``None`` (all) otherwise.

    An ``hr`` principal asking for any other customer gets :class:`AccessDenied`.
    """
    if not isinstance(principal, Principal):
        raise AccessDenied("no signed-in principal")
    if customer_id is not None and not isinstance(customer_id, str):
        raise AccessDenied(f"customer_id must be text, got {type(customer_id).__name__}")
    if principal.role == "hr":
        if customer_id is not None and customer_id != principal.customer_id:
            raise AccessDenied("you can only see your own organisation's numbers")
        return (str(principal.customer_id),)
    return None if customer_id is None else (customer_id,)


class StoreUnavailable(RuntimeError):
    """The published store could not be read just now (being replaced, or damaged); nothing was shown."""


def _store_stamp() -> tuple[str, int, int, int]:
    """Identity of the published file now: path, inode, mtime, size (a publish swaps in a new inode)."""
    path = home_paths().published
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (str(path), 0, 0, 0)
    return (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)


@st.cache_resource(ttl=600, max_entries=2, show_spinner=False)
def _snapshot(stamp: tuple[str, int, int, int]) -> dict[str, pl.DataFrame]:
    """Every published table of the file ``stamp`` names, read once per publish on one attachment.

    Only aggregates live in the published store, and the role and tenant filters apply to every
    query taken from the snapshot (:func:`_query`). Reading whole tables once after a publish,
    instead of one attachment per principal and query, made the renders after a publish about
    five times cheaper under load. The file is attached to a fresh in-memory database:
    ``duckdb.connect(path)`` would hand back an instance another session still holds open on
    the replaced file, and its old contents would be served under the new file's stamp.
    """
    path, inode, _, _ = stamp
    tables = {t: pl.DataFrame(schema=published.polars_schema(t)) for t in published.PUBLISHED_TABLES}
    if inode == 0:
        return tables
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS published (READ_ONLY)")
        present = {
            r[0]
            for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'published'").fetchall()
        }
        for table in tables:
            if table in present:  # an older store without a table: nothing published in it
                frame = con.execute(f"SELECT * FROM published.{table}").pl()
                if not frame.is_empty():
                    tables[table] = frame
    except duckdb.Error as exc:
        raise StoreUnavailable(type(exc).__name__) from None
    finally:
        con.close()
    return tables


@st.cache_resource(ttl=600, max_entries=512, show_spinner=False)
def _query(
    table: str,
    where: tuple[tuple[str, tuple[object, ...]], ...],
    order: tuple[str, ...],
    scope_key: str,
    stamp: tuple[str, int, int, int],
    scope: tuple[str, ...] | None,
) -> pl.DataFrame:
    """Rows of ``table`` in ``scope`` (None: every customer) matching ``where``, sorted by ``order``.

    ``scope_key`` and ``stamp`` key the cache: a frame is never served to another principal, and
    a publish (new inode) is a new key. Frames are shared, not copied (``st.cache_resource``):
    polars frames are immutable to the pages, and ``st.cache_data`` unpickled a copy of the frame
    on every hit of every render. Sessions sharing one frame object is safe from the polars
    interop deadlock because every conversion goes through :func:`dashboards.frames.arrow_table`
    under its process-wide lock (and ``tests/test_architecture.py`` forbids any other).
    """
    frame = _snapshot(stamp)[table]
    condition = pl.lit(True)
    if scope is not None:
        condition &= pl.col("customer_id").is_in(list(scope))
    for column, values in where:
        condition &= pl.col(column).is_in(list(values))
    frame = frame.filter(condition)
    if order:
        frame = frame.sort(list(order), maintain_order=True, nulls_last=True)
    return frame


def _select(
    principal: Principal,
    table: str,
    customer_id: str | None,
    *,
    where: Iterable[tuple[str, object]] = (),
    order: str = "",
) -> pl.DataFrame:
    if principal is None or principal.role not in TABLE_ROLES[table]:
        raise AccessDenied(f"the {getattr(principal, 'role', 'anonymous')} role cannot read {table}")
    scope = customer_scope(principal, customer_id)
    frozen = tuple((column, tuple(value) if isinstance(value, (list, tuple)) else (value,)) for column, value in where)
    columns = tuple(c.strip() for c in order.split(",") if c.strip())
    return _query(table, frozen, columns, principal.cache_key, _store_stamp(), scope)


def releases(principal: Principal, customer_id: str | None = None) -> pl.DataFrame:
    """Current releases (one row per customer and period) visible to ``principal``."""
    return _select(principal, "releases", customer_id, order="customer_id, period")


def cells(
    principal: Principal,
    customer_id: str | None = None,
    *,
    dimensions: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
) -> pl.DataFrame:
    """Published cells (long format) visible to ``principal``, optionally narrowed.

    ``hr``: its own customer only. ``provider``: every customer, uptake metrics only
    (:data:`PROVIDER_METRICS`). ``privacy_officer``: everything published.
    """
    where: list[tuple[str, object]] = []
    if dimensions is not None:
        where.append(("dimension", tuple(dimensions)))
    if principal is not None and getattr(principal, "role", None) == "provider":
        wanted = PROVIDER_METRICS if metrics is None else tuple(m for m in metrics if m in PROVIDER_METRICS)
        where.append(("metric", wanted))
    elif metrics is not None:
        where.append(("metric", tuple(metrics)))
    return _select(principal, "release_cells", customer_id, where=where, order="customer_id, period")


def budget_ledger(principal: Principal, customer_id: str | None = None) -> pl.DataFrame:
    """Every draw in the published copy of the ledger (privacy officers only)."""
    return _select(principal, "budget_ledger", customer_id, order="customer_id, created_at, entry_id")


def public_headcount(principal: Principal, customer_id: str | None = None) -> pl.DataFrame:
    """The customers' public structure (after roll-up of small groups); never derived from usage."""
    return _select(principal, "public_headcount", customer_id, order="customer_id, dimension, group_value")


def published_policy_version(customer_id: str) -> int | None:
    """The policy version the customer's latest published release was drawn under (for the public notice).

    No principal: the notice needs no sign-in. Only a policy version number is returned (policy
    is public by design); never a figure.
    """
    frame = _query("releases", (), ("period", "version"), "notice", _store_stamp(), (customer_id,))
    if frame.is_empty():
        return None
    return int(frame["policy_version"][-1])


def allocations(principal: Principal, customer_id: str | None = None) -> pl.DataFrame:
    """How each release spent its budget: which breakdowns were measured and why one was not.

    Public by construction (a function of the policy and the public headcount), but scoped to
    the tenant like everything else.
    """
    return _select(principal, "release_allocations", customer_id, order="customer_id, period")


def customers(principal: Principal) -> list[str]:
    """Customers the principal may look at: its own for ``hr``; every published customer otherwise."""
    scope = customer_scope(principal)
    if scope is not None:
        return list(scope)
    found = set(releases(principal)["customer_id"].to_list())
    found |= set(public_headcount(principal)["customer_id"].to_list())
    return sorted(found)
