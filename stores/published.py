"""The published store's schema (``published.duckdb``): the one place its columns are written.

Every copy of the schema is derived from :data:`TABLES`: the ``CREATE TABLE`` statements
(:func:`create_table_sql`), the polars schemas of empty frames (:func:`polars_schema`), the
column lists of ``SELECT``/``INSERT`` statements (:func:`column_sql`) and the structural check
run before a new file is swapped in (:func:`identifier_columns`, :func:`unexpected_tables`).
The pipeline (``pipeline/releases/publish.py``, ``release_store.py``), the dashboards
(``dashboards/data.py``) and the test factory (``tests/dashboards/published_factory.py``) use it.

``release_cells`` is ``release_id`` followed by the privacy library's definition of a release
cell, :data:`privacy.suppression.CELL_SCHEMA`; ``public_headcount`` is
:data:`privacy.structure.HEADCOUNT_SCHEMA` (its headcount stored as INTEGER). A column added there is published (and checked)
without an edit here.

Privacy reason: the published store holds aggregates only. No column may look like an
identifier of a person or a record (:data:`IDENTIFIER_PATTERN`), which the publish step
checks on the new file before it becomes visible, and which ``tests/stores`` checks on the
declared schema itself. Of a suppressed cell, no number is kept (:data:`MASKED_CELL_COLUMNS`).

>>> [c.name for c in TABLES["public_headcount"]]
['customer_id', 'as_of', 'dimension', 'group_value', 'headcount']
>>> create_table_sql("public_headcount")
'CREATE TABLE public_headcount (customer_id VARCHAR, as_of DATE, dimension VARCHAR, group_value VARCHAR, headcount INTEGER)'
>>> column_sql("policy_history", prefix="h.")
'h.changed_at, h.changed_by, h.scope, h.key, h.old_value, h.new_value, h.policy_version, h.warning'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from privacy.plan import ALLOCATION_SCHEMA
from privacy.structure import HEADCOUNT_SCHEMA
from privacy.suppression import CELL_SCHEMA

__all__ = [
    "CELL_COLUMNS",
    "CELL_KEY_COLUMNS",
    "IDENTIFIER_PATTERN",
    "MASKED_CELL_COLUMNS",
    "PUBLISHED_TABLES",
    "TABLES",
    "Column",
    "column_names",
    "column_sql",
    "create_table_sql",
    "ddl",
    "duckdb_type",
    "identifier_columns",
    "polars_schema",
    "unexpected_tables",
]


@dataclass(frozen=True)
class Column:
    """One published column: its name, DuckDB type and polars type (derived from each other)."""

    name: str
    polars: Any  # a polars data type (class or instance)

    @property
    def duckdb(self) -> str:
        return duckdb_type(self.polars)


_DUCKDB_TYPES: tuple[tuple[Any, str], ...] = (
    (pl.String, "VARCHAR"),
    (pl.Float64, "DOUBLE"),
    (pl.Boolean, "BOOLEAN"),
    (pl.Int64, "BIGINT"),
    (pl.Int32, "INTEGER"),
    (pl.Date, "DATE"),
    (pl.Datetime, "TIMESTAMP"),
)


def duckdb_type(dtype: Any) -> str:
    """The DuckDB type of a polars type (only the types the published store uses).

    >>> duckdb_type(pl.Int64), duckdb_type(pl.Datetime("us")), duckdb_type(pl.String())
    ('BIGINT', 'TIMESTAMP', 'VARCHAR')
    """
    for polars_type, sql in _DUCKDB_TYPES:
        if dtype == polars_type:  # a class matches its instances too (Datetime("us") == Datetime)
            return sql
    raise TypeError(f"no DuckDB type for the polars type {dtype!r} in the published schema")


def _columns(schema: Mapping[str, Any]) -> tuple[Column, ...]:
    return tuple(Column(name, dtype) for name, dtype in schema.items())


_S, _F, _I32, _I64, _TS = pl.String, pl.Float64, pl.Int32, pl.Int64, pl.Datetime("us")

# fmt: off
TABLES: dict[str, tuple[Column, ...]] = {
    # One row per current (customer, period) release: how it was drawn and under which policy.
    "releases": _columns(
        {
            "release_id": _S, "customer_id": _S, "period": _S,  # period 'YYYY-MM' | 'YYYY-Qn'
            "granularity": _S,  # 'month' | 'quarter'
            "version": _I32, "created_at": _TS, "requested_by": _S,
            "rho": _F, "epsilon": _F, "delta": _F, "accounting": _S,  # 'zcdp' | 'pure'
            "policy_version": _I32, "code_version": _S, "k": _I32, "k_scores": _I32, "z": _F,
        }
    ),
    # Long format: one row per (release, dimension, group, metric); the privacy library's cell.
    "release_cells": _columns({"release_id": _S, **CELL_SCHEMA}),
    # Every draw, re-issues included (the published copy of the raw store's authoritative ledger).
    "budget_ledger": _columns(
        {
            "entry_id": _I64, "customer_id": _S, "period": _S, "release_id": _S,
            "kind": _S,  # 'release' | 'reissue'
            "rho": _F, "epsilon": _F, "delta": _F, "policy_version": _I32,
            "created_at": _TS, "code_version": _S, "requested_by": _S,
        }
    ),
    # The control store's policy changes (scope '*' = the default, or a customer_id).
    "policy_history": _columns(
        {
            "changed_at": _TS, "changed_by": _S, "scope": _S, "key": _S,
            "old_value": _S, "new_value": _S, "policy_version": _I32,
            "warning": _S,  # the risk a change accepted (privacy.policy.policy_warnings), if any
        }
    ),
    # The customer's own public structure after roll-up of small groups; never derived from usage.
    # A headcount is INTEGER wherever it is stored (the raw headcount table, the stored draws,
    # here); privacy.structure computes it as Int64 and the publish step casts.
    "public_headcount": _columns({**HEADCOUNT_SCHEMA, "headcount": _I32}),
    # How each release spent its budget (the privacy library's plan): which breakdowns were measured,
    # their share, and why one was not (so the dashboards can say it). Public: a function of the policy
    # and the public headcount only.
    "release_allocations": _columns({"release_id": _S, "customer_id": _S, "period": _S, **ALLOCATION_SCHEMA}),
}
# fmt: on
PUBLISHED_TABLES: tuple[str, ...] = tuple(TABLES)

# The columns of a release cell (without ``release_id``), in the privacy library's order.
CELL_COLUMNS: tuple[str, ...] = tuple(CELL_SCHEMA)
# What identifies a cell inside a release (and orders cells in a stable way).
CELL_KEY_COLUMNS: tuple[str, ...] = ("customer_id", "period", "dimension", "group_value", "metric")
# Every number of a cell: NULL whenever the cell is suppressed (nothing of a hidden cell is kept).
MASKED_CELL_COLUMNS: tuple[str, ...] = tuple(
    name for name, dtype in CELL_SCHEMA.items() if duckdb_type(dtype) in ("DOUBLE", "BIGINT", "INTEGER")
)

# A column whose name contains one of these would identify people or their records.
IDENTIFIER_PATTERN = re.compile(r"employee|pseudonym|client|event|hash|email|name|person|user_id|ssn", re.I)


def column_names(table: str) -> tuple[str, ...]:
    """The column names of a published table, in order."""
    return tuple(c.name for c in TABLES[table])


def column_sql(table: str, *, prefix: str = "") -> str:
    """``a, b, c`` (each with ``prefix``, e.g. ``'d.'``) for a ``SELECT`` or ``INSERT`` column list."""
    return ", ".join(f"{prefix}{name}" for name in column_names(table))


def polars_schema(table: str) -> dict[str, Any]:
    """The polars schema of a published table (e.g. for the empty frame of a store without rows)."""
    return {c.name: c.polars for c in TABLES[table]}


def create_table_sql(table: str, *, database: str | None = None) -> str:
    """The ``CREATE TABLE`` statement of a published table (in ``database`` when given)."""
    target = f"{database}.{table}" if database else table
    return f"CREATE TABLE {target} ({', '.join(f'{c.name} {c.duckdb}' for c in TABLES[table])})"


def ddl(*, database: str | None = None) -> str:
    """Every ``CREATE TABLE`` of the published store, ``;``-separated (one ``execute`` runs them all)."""
    return ";\n".join(create_table_sql(t, database=database) for t in TABLES) + ";"


def identifier_columns(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    """``table.column`` names in ``database`` that look like identifiers of people or records."""
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? ORDER BY 1, 2", [database]
    ).fetchall()
    return [f"{t}.{c}" for t, c in rows if IDENTIFIER_PATTERN.search(c)]


def unexpected_tables(con: duckdb.DuckDBPyConnection, database: str) -> tuple[list[str], list[str]]:
    """Tables and views of ``database`` that are not published tables, and published tables it lacks."""
    found = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
            "UNION SELECT view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal",
            [database, database],
        ).fetchall()
    }
    return sorted(found - set(PUBLISHED_TABLES)), sorted(set(PUBLISHED_TABLES) - found)
