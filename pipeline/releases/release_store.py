"""Stored release draws and the authoritative budget ledger, inside the encrypted raw store.

Privacy reason: the draw (noisy cells, public headcount) and its ledger row are written in
ONE transaction, so there is never a published draw without a spend, nor a spend without
the draw that re-runs will serve. The ledger lives in the raw store (the pipeline's own,
encrypted store), never only in the published copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from privacy.periods import max_window_spend

RELEASE_DDL = """
CREATE TABLE IF NOT EXISTS release_draws (
    release_id     VARCHAR PRIMARY KEY,
    customer_id    VARCHAR NOT NULL,
    period         VARCHAR NOT NULL,      -- 'YYYY-MM' | 'YYYY-Qn'
    granularity    VARCHAR NOT NULL,      -- 'month' | 'quarter'
    version        INTEGER NOT NULL,      -- 1 for the first draw, +1 per reissue
    created_at     TIMESTAMP NOT NULL,
    requested_by   VARCHAR NOT NULL,
    rho            DOUBLE NOT NULL,
    epsilon        DOUBLE NOT NULL,
    delta          DOUBLE NOT NULL,
    accounting     VARCHAR NOT NULL,
    policy_version INTEGER NOT NULL,
    code_version   VARCHAR NOT NULL,
    k              INTEGER NOT NULL,
    k_scores       INTEGER NOT NULL,
    z              DOUBLE NOT NULL,
    UNIQUE (customer_id, period, version)
);
CREATE TABLE IF NOT EXISTS release_draw_cells (
    release_id  VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    period      VARCHAR NOT NULL,
    dimension   VARCHAR NOT NULL,
    group_value VARCHAR NOT NULL,
    metric      VARCHAR NOT NULL,
    value       DOUBLE,                  -- NULL when suppressed
    ci_low      DOUBLE,
    ci_high     DOUBLE,
    suppressed  BOOLEAN NOT NULL,
    reason      VARCHAR
);
CREATE TABLE IF NOT EXISTS release_public_headcount (
    release_id  VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    as_of       DATE NOT NULL,
    dimension   VARCHAR NOT NULL,
    group_value VARCHAR NOT NULL,
    headcount   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS budget_ledger (
    entry_id       BIGINT PRIMARY KEY,
    customer_id    VARCHAR NOT NULL,
    period         VARCHAR NOT NULL,
    release_id     VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,      -- 'release' | 'reissue'
    rho            DOUBLE NOT NULL,
    epsilon        DOUBLE NOT NULL,
    delta          DOUBLE NOT NULL,
    policy_version INTEGER NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    code_version   VARCHAR NOT NULL,
    requested_by   VARCHAR NOT NULL
);
"""

CELL_COLUMNS: tuple[str, ...] = (
    "customer_id", "period", "dimension", "group_value", "metric",
    "value", "ci_low", "ci_high", "suppressed", "reason",
)
HEADCOUNT_COLUMNS: tuple[str, ...] = ("customer_id", "as_of", "dimension", "group_value", "headcount")


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


_DRAW_FIELDS = ", ".join(StoredRelease.__dataclass_fields__)


def ensure_release_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the release tables in the raw store if needed (read-write connection)."""
    con.execute(RELEASE_DDL)


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
        f"SELECT {_DRAW_FIELDS} FROM release_draws WHERE customer_id = ? AND period = ? "
        "ORDER BY version DESC LIMIT 1",
        [customer_id, period],
    ).fetchone()
    return None if row is None else StoredRelease(*row)


def released_periods(con: duckdb.DuckDBPyConnection, customer_id: str) -> set[str]:
    """Periods of the customer that already have a stored draw."""
    if not has_release_tables(con):
        return set()
    rows = con.execute("SELECT DISTINCT period FROM release_draws WHERE customer_id = ?", [customer_id]).fetchall()
    return {r[0] for r in rows}


def draw_cells(con: duckdb.DuckDBPyConnection, release_id: str) -> pl.DataFrame:
    """The stored cells of one draw, in a stable order."""
    return con.execute(
        f"SELECT {', '.join(CELL_COLUMNS)} FROM release_draw_cells WHERE release_id = ? "
        "ORDER BY dimension, group_value, metric",
        [release_id],
    ).pl()


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


def store_draw(
    con: duckdb.DuckDBPyConnection,
    header: StoredRelease,
    cells: pl.DataFrame,
    public_headcount: pl.DataFrame,
    *,
    kind: str,
) -> int:
    """Store a draw, its cells, its public headcount and its ledger row in ONE transaction.

    Suppressed cells are stored with ``value``/``ci_low``/``ci_high`` set to NULL: a value that
    did not pass the threshold is never kept where a later publish could pick it up.
    Returns the ledger ``entry_id``.
    """
    if kind not in ("release", "reissue"):
        raise ValueError(f"ledger kind must be 'release' or 'reissue' (got {kind!r})")
    missing = [c for c in CELL_COLUMNS if c not in cells.columns]
    if missing:
        raise ValueError(f"release cells lack column(s) {missing}")
    cell_frame = (
        cells.select(CELL_COLUMNS)
        .with_columns(
            [
                pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).cast(pl.Float64).alias(c)
                for c in ("value", "ci_low", "ci_high")
            ]
        )
        .with_columns(pl.lit(header.release_id).alias("release_id"))
    )
    headcount_frame = public_headcount.select(HEADCOUNT_COLUMNS).with_columns(
        pl.lit(header.release_id).alias("release_id")
    )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"INSERT INTO release_draws ({_DRAW_FIELDS}) VALUES ({', '.join('?' for _ in StoredRelease.__dataclass_fields__)})",
            [getattr(header, f) for f in StoredRelease.__dataclass_fields__],
        )
        con.register("_wb_cells", cell_frame)
        con.execute(
            "INSERT INTO release_draw_cells SELECT release_id, "
            + ", ".join(CELL_COLUMNS)
            + " FROM _wb_cells"
        )
        con.unregister("_wb_cells")
        con.register("_wb_headcount", headcount_frame)
        con.execute(
            "INSERT INTO release_public_headcount SELECT release_id, "
            + ", ".join(HEADCOUNT_COLUMNS)
            + " FROM _wb_headcount"
        )
        con.unregister("_wb_headcount")
        row = con.execute("SELECT coalesce(max(entry_id), 0) + 1 FROM budget_ledger").fetchone()
        entry_id = int(row[0]) if row else 1
        con.execute(
            "INSERT INTO budget_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                entry_id, header.customer_id, header.period, header.release_id, kind,
                header.rho, header.epsilon, header.delta, header.policy_version,
                header.created_at, header.code_version, header.requested_by,
            ],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return entry_id
