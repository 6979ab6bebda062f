"""Stored release draws and the authoritative budget ledger, inside the encrypted raw store.

Privacy reason: the draw (noisy cells, public headcount) and its ledger row are written in
ONE transaction, so there is never a published draw without a spend, nor a spend without
the draw that re-runs will serve. The ledger lives in the raw store (the pipeline's own,
encrypted store), never only in the published copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime

import duckdb
import polars as pl

from privacy.periods import max_window_spend
from stores import published
from stores.published import CELL_COLUMNS, CELL_KEY_COLUMNS, MASKED_CELL_COLUMNS

HEADCOUNT_COLUMNS: tuple[str, ...] = published.column_names("public_headcount")


def _table_sql(
    name: str,
    table: str,
    *,
    first: tuple[str, ...] = (),
    nullable: tuple[str, ...] = (),
    constraints: tuple[str, ...] = (),
) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of a raw-store table with the columns of a published table.

    The raw store keeps every draw (the published store only the current one), so its release
    tables have the published columns, NOT NULL unless listed in ``nullable``, plus constraints.
    """
    columns = [*first] + [
        f"{c.name} {c.duckdb}{'' if c.name in nullable else ' NOT NULL'}" for c in published.TABLES[table]
    ]
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    " + ",\n    ".join([*columns, *constraints]) + "\n);\n"


# Cells: the key columns and ``suppressed`` are always set; numbers are NULL when suppressed.
_CELL_NULLABLE = tuple(c for c in CELL_COLUMNS if c not in (*CELL_KEY_COLUMNS, "suppressed"))

RELEASE_DDL = (
    _table_sql(
        "release_draws", "releases", constraints=("PRIMARY KEY (release_id)", "UNIQUE (customer_id, period, version)")
    )
    + _table_sql("release_draw_cells", "release_cells", nullable=_CELL_NULLABLE)
    + _table_sql("release_public_headcount", "public_headcount", first=("release_id VARCHAR NOT NULL",))
    + _table_sql("budget_ledger", "budget_ledger", constraints=("PRIMARY KEY (entry_id)",))
    + _table_sql("release_draw_allocations", "release_allocations", nullable=("reason",))
)
ALLOCATION_COLUMNS: tuple[str, ...] = published.column_names("release_allocations")


@dataclass(frozen=True)
class StoredRelease:
    """The header of one stored draw (a row of ``release_draws``)."""

    release_id: str
    customer_id: str
    period: str
    granularity: str
    version: int
    created_at: datetime
    requested_by: str
    rho: float
    epsilon: float
    delta: float
    accounting: str
    policy_version: int
    code_version: str
    k: int
    k_scores: int
    z: float


_DRAW_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(StoredRelease))
_DRAW_FIELDS = ", ".join(_DRAW_FIELD_NAMES)
if published.column_names("releases") != _DRAW_FIELD_NAMES:  # one list: the published releases table
    raise ImportError("StoredRelease must have exactly the columns of the published releases table")


def ensure_release_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the release tables in the raw store if needed (read-write connection).

    A cell column added to the privacy library's cell (``privacy.suppression.CELL_SCHEMA``)
    after a store was created is added to its ``release_draw_cells`` (NULL in older draws).
    """
    con.execute(RELEASE_DDL)
    present = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND table_name = 'release_draw_cells'"
        ).fetchall()
    }
    for column in published.TABLES["release_cells"]:
        if column.name not in present:
            con.execute(f"ALTER TABLE release_draw_cells ADD COLUMN {column.name} {column.duckdb}")


def has_release_tables(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name IN ('release_draws', 'budget_ledger')"
    ).fetchone()
    return bool(row and row[0] == 2)


def current_draw(con: duckdb.DuckDBPyConnection, customer_id: str, period: str) -> StoredRelease | None:
    """The current (highest-version) stored draw of (customer, period), if any."""
    if not has_release_tables(con):
        return None
    row = con.execute(
        f"SELECT {_DRAW_FIELDS} FROM release_draws WHERE customer_id = ? AND period = ? ORDER BY version DESC LIMIT 1",
        [customer_id, period],
    ).fetchone()
    return None if row is None else StoredRelease(*row)


def released_periods(con: duckdb.DuckDBPyConnection, customer_id: str) -> set[str]:
    """Periods of the customer that already have a stored draw."""
    if not has_release_tables(con):
        return set()
    rows = con.execute("SELECT DISTINCT period FROM release_draws WHERE customer_id = ?", [customer_id]).fetchall()
    return {r[0] for r in rows}


def ledger_entries(con: duckdb.DuckDBPyConnection, customer_id: str | None = None) -> pl.DataFrame:
    """Ledger rows (all customers, or one), oldest first."""
    if not has_release_tables(con):
        return pl.DataFrame(
            schema={"entry_id": pl.Int64, "customer_id": pl.String, "period": pl.String, "rho": pl.Float64}
        )
    query = "SELECT * FROM budget_ledger"
    params: list[object] = []
    if customer_id is not None:
        query += " WHERE customer_id = ?"
        params = [customer_id]
    return con.execute(query + " ORDER BY entry_id", params).pl()


def spent_in_window(con: duckdb.DuckDBPyConnection, customer_id: str, period: str) -> float:
    """Largest ρ already spent in any rolling 12-month window that would also contain ``period``."""
    entries = ledger_entries(con, customer_id)
    pairs = [(p, float(r)) for p, r in zip(entries["period"].to_list(), entries["rho"].to_list())]
    return max_window_spend(pairs, period)


@dataclass(frozen=True)
class DrawToStore:
    """One draw for :func:`store_draws`: its header, cells, public headcount, ledger kind and allocation."""

    header: StoredRelease
    cells: pl.DataFrame
    public_headcount: pl.DataFrame
    kind: str
    allocations: pl.DataFrame | None = None


def store_draw(
    con: duckdb.DuckDBPyConnection,
    header: StoredRelease,
    cells: pl.DataFrame,
    public_headcount: pl.DataFrame,
    *,
    kind: str,
    allocations: pl.DataFrame | None = None,
) -> int:
    """Store a draw, its cells, its public headcount, its allocation and its ledger row in ONE transaction.

    Suppressed cells are stored with ``value``/``ci_low``/``ci_high`` set to NULL: a value that
    did not pass the threshold is never kept where a later publish could pick it up.
    Returns the ledger ``entry_id``.
    """
    return store_draws(con, [DrawToStore(header, cells, public_headcount, kind, allocations)])[0]


def store_draws(
    con: duckdb.DuckDBPyConnection,
    draws: list[DrawToStore],
    *,
    verify: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> list[int]:
    """Store several draws (each as :func:`store_draw`: draw, cells, public headcount, allocation and
    ledger row) in ONE transaction; the ledger rows in the order of ``draws``. Returns their ``entry_id``.

    ``verify(con)`` runs inside the transaction after every row is written (e.g. the budget cap
    read back from the ledger); if it raises, nothing of any draw is stored or spent.
    """
    for d in draws:
        if d.kind not in ("release", "reissue"):
            raise ValueError(f"ledger kind must be 'release' or 'reissue' (got {d.kind!r})")
        missing = [c for c in CELL_COLUMNS if c not in d.cells.columns]
        if missing:
            raise ValueError(f"release cells lack column(s) {missing}")
        keys = d.cells.select(CELL_KEY_COLUMNS)
        if keys.height != keys.unique().height or not (
            (keys["customer_id"] == d.header.customer_id).all() and (keys["period"] == d.header.period).all()
        ):
            # e.g. a library behaving differently (DuckDB without pandas repeats registered rows):
            # never store a draw whose cells are not exactly one per key of its own customer-period
            raise ValueError(
                f"the draw of {d.header.customer_id} {d.header.period} has repeated cells or cells of another "
                "release; nothing was stored"
            )
    if not draws:
        return []
    cell_schema = published.polars_schema("release_cells")
    cell_frame = pl.concat([
        d.cells.select(CELL_COLUMNS).with_columns(
            [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).cast(cell_schema[c]).alias(c)
             for c in MASKED_CELL_COLUMNS]
        ).with_columns(pl.lit(d.header.release_id).alias("release_id"))
        for d in draws
    ], how="vertical_relaxed")  # fmt: skip
    headcount_frame = pl.concat([
        d.public_headcount.select(HEADCOUNT_COLUMNS).with_columns(pl.lit(d.header.release_id).alias("release_id"))
        for d in draws
    ], how="vertical_relaxed")  # fmt: skip
    allocation_parts = [
        d.allocations.with_columns(
            release_id=pl.lit(d.header.release_id),
            customer_id=pl.lit(d.header.customer_id),
            period=pl.lit(d.header.period),
        ).select(ALLOCATION_COLUMNS)
        for d in draws
        if d.allocations is not None
    ]
    header_frame = pl.DataFrame(
        [[getattr(d.header, f) for f in _DRAW_FIELD_NAMES] for d in draws], schema=list(_DRAW_FIELD_NAMES), orient="row"
    )
    ledger_columns = published.column_names("budget_ledger")
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_wb_draws", header_frame)
        con.execute(f"INSERT INTO release_draws ({_DRAW_FIELDS}) SELECT {_DRAW_FIELDS} FROM _wb_draws")
        con.register("_wb_cells", cell_frame)
        con.execute(
            f"INSERT INTO release_draw_cells BY NAME SELECT release_id, {', '.join(CELL_COLUMNS)} FROM _wb_cells"
        )
        con.register("_wb_headcount", headcount_frame)
        con.execute(
            f"INSERT INTO release_public_headcount BY NAME SELECT release_id, {', '.join(HEADCOUNT_COLUMNS)} "
            "FROM _wb_headcount"
        )
        if allocation_parts:
            con.register("_wb_allocations", pl.concat(allocation_parts, how="vertical_relaxed"))
            con.execute(
                f"INSERT INTO release_draw_allocations BY NAME SELECT {', '.join(ALLOCATION_COLUMNS)} FROM _wb_allocations"
            )
        row = con.execute("SELECT coalesce(max(entry_id), 0) + 1 FROM budget_ledger").fetchone()
        first = int(row[0]) if row else 1
        entry_ids = list(range(first, first + len(draws)))
        ledger_frame = header_frame.with_columns(
            entry_id=pl.Series(entry_ids, dtype=pl.Int64), kind=pl.Series([d.kind for d in draws], dtype=pl.String)
        )
        con.register("_wb_ledger", ledger_frame)
        con.execute(
            f"INSERT INTO budget_ledger ({', '.join(ledger_columns)}) SELECT {', '.join(ledger_columns)} FROM _wb_ledger"
        )
        if verify is not None:
            verify(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for view in ("_wb_draws", "_wb_cells", "_wb_headcount", "_wb_allocations", "_wb_ledger"):
            con.unregister(view)  # a no-op for a name not registered
    return entry_ids
