"""One customer-period release: public keys → DuckDB reduction → OpenDP → DuckDB thresholds.

Privacy reason: this is the only path from raw tables to publishable numbers. It reads
``events`` and ``headcount`` through the caller's connection, writes nothing, and draws the
noise exactly once (the caller stores the draw; re-running must serve the stored release).
The returned cells are post-processing of one OpenDP measurement whose total loss is
:func:`privacy.budget.release_cost`; the caller checks and records the budget *before*
calling this function.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from privacy.budget import Cost, release_cost
from privacy.periods import parse_period
from privacy.policy import ReleasePolicy
from privacy.reduce import Bounds, reduce_period
from privacy.structure import load_structure
from privacy.suppression import apply_thresholds


@dataclass(frozen=True)
class DrawnRelease:
    """A drawn release: cells after thresholds and the public headcount it was computed against."""

    customer_id: str
    period: str
    granularity: str
    cost: Cost
    cells: pl.DataFrame
    public_headcount: pl.DataFrame


def draw_release(
    con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy
) -> DrawnRelease:
    """Draw the release of ``customer_id`` for ``period`` (``YYYY-MM`` or ``YYYY-Qn``), once.

    Privacy unit: one employee. Budget consumed: ``release_cost(policy, period)`` (ρ-zCDP or
    ε-DP), split over the tables released at the period's granularity by ``policy.weights``.
    Bounds: ``policy.max_*`` contribution bounds, scores clamped to their contract ranges.
    """
    from privacy.measure import measure, plan_queries

    p = parse_period(period)
    cost = release_cost(policy, p.label)  # also refuses a period with nothing to release
    tables = policy.tables_for(p.granularity)
    total_budget = cost.rho if policy.accounting == "zcdp" else cost.epsilon
    structure = load_structure(con, customer_id, p.label, policy.k)
    bounds = Bounds.for_period(policy, p)
    frame = reduce_period(
        con,
        customer_id,
        p,
        bounds,
        structure.key_map,
        with_services="services" in tables,
        with_topics="topics" in tables,
    )
    specs = plan_queries(policy, tables, bounds, structure.people_keys(), total_budget)
    measured = measure(frame, specs, policy, total_budget)
    del frame  # individual rows go no further than the measurement
    cells = apply_thresholds(
        measured.noisy,
        structure.public_headcount,
        customer_id=customer_id,
        period=p.label,
        k=policy.k,
        k_scores=policy.k_scores,
        z=policy.z,
    )
    return DrawnRelease(
        customer_id=customer_id,
        period=p.label,
        granularity=p.granularity,
        cost=cost,
        cells=cells,
        public_headcount=structure.public_headcount,
    )
