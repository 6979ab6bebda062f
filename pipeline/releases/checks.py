"""Re-verification of the published store: thresholds, ledger within cap, no identifier column.

These run on the *published* file (what customers can see), independently of the code
that built it, and back the blocking Dagster asset checks. Each returns a
:class:`CheckFinding` with aggregate facts only: counts of offending cells and the
(customer, period, dimension, metric) labels — never a cell value.

Threshold rule re-verified: a non-suppressed ``engaged_employees`` cell must satisfy
``value >= k + z·σ``. σ is not published; it is bounded from below by the cell's 95 %
interval: half-width / 2.58 (the smallest σ consistent with an interval at any α ≥ 0.01 for
Gaussian noise; Laplace noise gives a larger σ for the same half-width), so the check never
fails a correctly suppressed release and always fails a published cell below ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from privacy.budget import Rho, fits_under_cap
from privacy.periods import max_window_spend
from privacy.policy import ReleasePolicy
from stores.published import identifier_columns, unexpected_tables

SIGMA_FROM_HALF_WIDTH = 1.0 / 2.58


@dataclass(frozen=True)
class CheckFinding:
    passed: bool
    description: str
    offending: int = 0
    examples: list[str] = field(default_factory=list)


def open_published(path: Path) -> duckdb.DuckDBPyConnection:
    """A short-lived read-only connection to the published store."""
    return duckdb.connect(str(path), read_only=True)


def check_thresholds(
    con: duckdb.DuckDBPyConnection, customer_id: str | None = None, period: str | None = None
) -> CheckFinding:
    """Every visible count passes ``k + z·σ``, every visible value lies inside its interval, and every
    suppressed cell carries no value.

    σ is the cell's published ``noise_sd`` (public, data-independent for a count); for a draw that
    predates it, the smallest σ consistent with its interval (half-width / 2.58).
    """
    where, params = _scope(customer_id, period, prefix="c.")
    below = con.execute(
        f"""
        SELECT c.customer_id, c.period, c.dimension, c.metric
        FROM release_cells c JOIN releases r USING (release_id)
        WHERE {where} AND NOT c.suppressed AND c.metric = 'engaged_employees'
          AND (c.value IS NULL
               OR c.value < r.k
               OR c.value < r.k + r.z * coalesce(c.noise_sd, (c.ci_high - c.ci_low) / 2 * {SIGMA_FROM_HALF_WIDTH}, 0))
        """,
        params,
    ).fetchall()
    leaking = con.execute(
        f"""
        SELECT c.customer_id, c.period, c.dimension, c.metric FROM release_cells c
        WHERE {where} AND c.suppressed AND (c.value IS NOT NULL OR c.ci_low IS NOT NULL OR c.ci_high IS NOT NULL)
        """,
        params,
    ).fetchall()
    # a visible non-count metric needs its group's visible engaged count (contacts/uptake follow it)
    orphan = con.execute(
        f"""
        SELECT c.customer_id, c.period, c.dimension, c.metric FROM release_cells c
        WHERE {where} AND NOT c.suppressed AND c.metric IN ('contacts', 'uptake_rate')
          AND NOT EXISTS (SELECT 1 FROM release_cells e WHERE e.release_id = c.release_id
                          AND e.dimension = c.dimension AND e.group_value = c.group_value
                          AND e.metric = 'engaged_employees' AND NOT e.suppressed)
        """,
        params,
    ).fetchall()
    outside = con.execute(
        f"""
        SELECT c.customer_id, c.period, c.dimension, c.metric FROM release_cells c
        WHERE {where} AND NOT c.suppressed AND NOT (c.ci_low <= c.value AND c.value <= c.ci_high)
        """,
        params,
    ).fetchall()
    bad = below + leaking + orphan + outside
    return CheckFinding(
        passed=not bad,
        description=(
            f"{len(below)} visible count(s) below k + z·sigma, {len(leaking)} suppressed cell(s) carrying a value, "
            f"{len(orphan)} visible cell(s) whose engaged count is suppressed, "
            f"{len(outside)} visible value(s) outside their interval"
        ),
        offending=len(bad),
        examples=sorted({" ".join(map(str, row)) for row in bad})[:10],
    )


def check_ledger_within_cap(
    con: duckdb.DuckDBPyConnection, caps: dict[str, ReleasePolicy], customer_id: str | None = None
) -> CheckFinding:
    """No rolling 12-month window of any customer's ledger exceeds its ρ cap (policy given per customer)."""
    where, params = _scope(customer_id, None, prefix="")
    rows = con.execute(f"SELECT customer_id, period, rho FROM budget_ledger WHERE {where}", params).fetchall()
    over: list[str] = []
    by_customer: dict[str, list[tuple[str, float]]] = {}
    for c, p, r in rows:
        by_customer.setdefault(c, []).append((p, float(r)))
    for c, entries in by_customer.items():
        policy = caps[c]
        worst = max(max_window_spend(entries, p) for p, _ in entries)
        if not fits_under_cap(Rho(worst), Rho(0.0), policy.cap):
            over.append(f"{c}: rho={worst:.4g} > cap {policy.cap.value:.4g}")
    return CheckFinding(
        passed=not over,
        description=f"{len(over)} customer(s) over their rolling 12-month cap",
        offending=len(over),
        examples=over[:10],
    )


def check_no_identifiers(con: duckdb.DuckDBPyConnection) -> CheckFinding:
    """Only the documented tables, and no column that looks like an identifier of people or records."""
    row = con.execute("SELECT current_database()").fetchone()
    database = str(row[0]) if row else ""
    found = identifier_columns(con, database)
    extra, _ = unexpected_tables(con, database)
    problems = found + [f"unexpected table {t}" for t in extra]
    return CheckFinding(
        passed=not problems,
        description=f"{len(found)} identifier-like column(s), {len(extra)} unexpected table(s)",
        offending=len(problems),
        examples=problems[:10],
    )


def _scope(customer_id: str | None, period: str | None, *, prefix: str) -> tuple[str, list[object]]:
    clauses: list[str] = ["TRUE"]
    params: list[object] = []
    if customer_id is not None:
        clauses.append(f"{prefix}customer_id = ?")
        params.append(customer_id)
    if period is not None:
        clauses.append(f"{prefix}period = ?")
        params.append(period)
    return " AND ".join(clauses), params
