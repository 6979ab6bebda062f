"""One customer-period release: public plan → DuckDB reduction → OpenDP → consistency → figures → thresholds.

Privacy reason: this is the only path from raw tables to publishable numbers. It reads
``events`` and ``headcount`` through the caller's connection, writes nothing, and draws the
noise exactly once (the caller stores the draw; re-running must serve the stored release).
The returned cells are post-processing of one OpenDP measurement whose total loss is
:func:`privacy.budget.release_cost`; the caller checks and records the budget *before*
calling this function.

Steps: the data-free plan (:mod:`privacy.plan`: which figures, their budgets and noise) →
the per-employee reduction (:mod:`privacy.reduce`) → the OpenDP measurement
(:mod:`privacy.measure`) → least-squares consistency over the public hierarchy
(:mod:`privacy.consistency`) → values and selection-aware intervals (:mod:`privacy.estimates`)
→ what is shown, in DuckDB (:mod:`privacy.suppression`). Everything after the measurement is
post-processing.

:func:`draw_release` draws one customer-period; :func:`draw_releases` draws many (the life
cycle's "all due" path), measuring the customers of one period whose plans are equal together
in one OpenDP measurement with exactly the per-customer scales and cost of single releases.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from privacy.budget import Cost
from privacy.consistency import reconcile
from privacy.estimates import estimate
from privacy.periods import Period, parse_period
from privacy.plan import ReleasePlan, plan_release
from privacy.policy import ReleasePolicy
from privacy.reduce import Reduced, reduce_people, reduce_period, reduce_usage
from privacy.structure import PublicStructure, load_structure
from privacy.suppression import apply_thresholds

if TYPE_CHECKING:
    from privacy.measure import Measured

# Customers per OpenDP measurement in draw_releases. Bounds the reduced rows held at once
# (≈ 3,000 people and ≈ 10,000 usage rows per customer-month of 3,000 engaged employees);
# the per-customer gain is mostly reached by then.
MAX_BATCH = 20


@dataclass(frozen=True)
class DrawnRelease:
    """A drawn release: cells after thresholds, the public headcount and the plan's allocation table."""

    customer_id: str
    period: str
    granularity: str
    cost: Cost
    cells: pl.DataFrame
    public_headcount: pl.DataFrame
    allocations: pl.DataFrame


@dataclass(eq=False)
class _Prepared:
    """Everything of one request that is known before drawing (public) plus its reduced frame."""

    customer_id: str
    period: Period
    cost: Cost
    structure: PublicStructure
    plan: ReleasePlan
    frame: Reduced | None  # individual rows: dropped as soon as they are measured


def _plan(con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy) -> _Prepared:
    """Everything of one request that is public (structure, plan, cost); no individual rows yet."""
    p = parse_period(period)
    structure = load_structure(con, customer_id, p.label, policy.k)  # refuses a customer without a headcount
    plan = plan_release(policy, p.label, structure)  # also refuses a period with nothing to release
    return _Prepared(customer_id, p, Cost.of(plan.budget, policy.delta), structure, plan, None)


def _prepare(con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy) -> _Prepared:
    """:func:`_plan` plus the reduced frame."""
    prep = _plan(con, customer_id, period, policy)
    prep.frame = reduce_period(
        con, customer_id, prep.period, prep.plan.bounds, prep.structure.key_map,
        with_services="services" in prep.plan.tables, with_topics="topics" in prep.plan.tables,
    )  # fmt: skip
    return prep


def _reading_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Another connection to ``con``'s database (for a second thread), on the same default catalog.

    It shares the database (its tables, attached catalogs and database-wide settings) but not
    ``con``'s connection state: temp tables, registered views and an open transaction's
    uncommitted writes of ``con`` are not visible to it. Release callers read committed tables only.
    """
    (catalog,) = con.execute("SELECT current_database()").fetchone()  # type: ignore[misc]
    cursor = con.cursor()
    try:
        cursor.execute(f'USE "{catalog}"')
    except BaseException:
        cursor.close()
        raise
    return cursor


PREPARE_WORKERS = 2  # the machine's cores


def _prepare_all(
    con: duckdb.DuckDBPyConnection, customers: Sequence[str], period: str, policy: ReleasePolicy
) -> list[_Prepared]:
    """:func:`_prepare` for several customers, in order: two customers' reductions side by side.

    One customer-month is too small for DuckDB's intra-query parallelism (its fixed per-operator
    cost dominates), so the reductions run one thread each (``SET threads = 1``, restored
    afterwards), two at a time, on cursors of ``con`` (a cursor is another connection to the
    same database; the queries only read). The results are those of sequential calls.
    """
    if len(customers) < 2:
        return [_prepare(con, c, period, policy) for c in customers]
    (threads,) = con.execute("SELECT current_setting('threads')").fetchone()  # type: ignore[misc]
    cursors = [_reading_cursor(con) for _ in range(PREPARE_WORKERS)]
    chunks = [list(customers[k::PREPARE_WORKERS]) for k in range(PREPARE_WORKERS)]
    try:
        con.execute("SET threads = 1")
        with ThreadPoolExecutor(max_workers=PREPARE_WORKERS) as pool:
            done = list(pool.map(lambda k: [_prepare(cursors[k], c, period, policy) for c in chunks[k]],
                                 range(PREPARE_WORKERS)))
    finally:
        con.execute(f"SET threads = {int(threads)}")
        for cur in cursors:
            cur.close()
    by_customer = {prep.customer_id: prep for part in done for prep in part}
    return [by_customer[c] for c in customers]


def _figures(measured: Measured, headcount: pl.DataFrame, policy: ReleasePolicy, period: str) -> pl.DataFrame:
    """Post-processing of one measurement (one or several customers): consistency, figures, thresholds."""
    noisy = measured.noisy
    if "customer_id" not in noisy.columns:
        noisy = noisy.with_columns(pl.lit(headcount["customer_id"][0]).alias("customer_id"))
    figures = estimate(reconcile(noisy), headcount, policy)
    return apply_thresholds(figures, period=period, k=policy.k, k_scores=policy.k_scores)


def _drawn(prep: _Prepared, cells: pl.DataFrame) -> DrawnRelease:
    return DrawnRelease(
        customer_id=prep.customer_id,
        period=prep.period.label,
        granularity=prep.period.granularity,
        cost=prep.cost,
        cells=cells,
        public_headcount=prep.structure.public_headcount,
        allocations=prep.plan.allocations,
    )


def draw_release(
    con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy
) -> DrawnRelease:
    """Draw the release of ``customer_id`` for ``period`` (``YYYY-MM`` or ``YYYY-Qn``), once.

    Privacy unit: one employee. Budget consumed: ``release_cost(policy, period)`` (ρ-zCDP or
    ε-DP), split over the measured figures by the plan (:func:`privacy.plan.plan_release`).
    Bounds: ``policy.max_*`` contribution bounds, scores clamped to their contract ranges.
    """
    from privacy.measure import measure_loading

    prep = _plan(con, customer_id, period, policy)  # public checks first: nothing is read or drawn if they fail
    with_usage = any(q.part == "usage" for q in prep.plan.queries)
    # the usage part (its reduction, then its OpenDP query) runs in a second thread, on its own connection
    cursor = _reading_cursor(con) if with_usage else None
    try:
        measured = measure_loading(
            lambda: reduce_people(con, customer_id, prep.period, prep.plan.bounds, prep.structure.key_map),
            lambda: reduce_usage(cursor, customer_id, prep.period, prep.plan.bounds,  # type: ignore[arg-type]
                                 with_services="services" in prep.plan.tables,
                                 with_topics="topics" in prep.plan.tables),
            prep.plan,
        )  # fmt: skip
    finally:
        if cursor is not None:
            cursor.close()
    return _drawn(prep, _figures(measured, prep.structure.public_headcount, policy, prep.period.label))


def _draw_one(prep: _Prepared, policy: ReleasePolicy) -> DrawnRelease:
    from privacy.measure import measure

    assert prep.frame is not None
    measured = measure(prep.frame, prep.plan)
    prep.frame = None  # individual rows go no further than the measurement
    return _drawn(prep, _figures(measured, prep.structure.public_headcount, policy, prep.period.label))


def draw_releases(
    con: duckdb.DuckDBPyConnection,
    requests: Sequence[tuple[str, str]],
    policy: ReleasePolicy,
    *,
    max_batch: int = MAX_BATCH,
) -> list[DrawnRelease]:
    """Draw several releases under one policy, once each; the result is in the order of ``requests``.

    ``requests`` are (customer_id, period) pairs, each drawn at most once (a repeated pair is
    refused: drawing twice would re-noise a release). Requests of the same period whose plans
    are equal (same queries and noise scales: :meth:`ReleasePlan.signature`) are measured
    together, up to ``max_batch`` customers per OpenDP measurement
    (:func:`privacy.measure.measure_batch`): the identifier is (customer, employee) and each
    customer's cells depend on that customer's employees only, so every customer's release has
    exactly the noise scales, intervals, thresholds and cost (``release_cost(policy, period)``,
    asserted against OpenDP's own privacy map) of :func:`draw_release`, and is charged to that
    customer's ledger alone. A customer whose plan no other shares, or whose public keys are
    fewer than the cells OpenDP would account in a batch, is drawn on its own. The caller checks
    and records each customer's budget *before* calling and stores every returned draw.

    Errors are those of :func:`draw_release` and abort the whole call: nothing is returned, so
    nothing can be stored or spent; the caller may then draw the remaining requests one by one
    with :func:`draw_release` to isolate the failing one.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1 (got {max_batch})")
    normalised = [(c, parse_period(p).label) for c, p in requests]
    seen: set[tuple[str, str]] = set()
    for pair in normalised:
        if pair in seen:
            raise ValueError(f"release {pair[0]!r} {pair[1]} requested twice in one call; a release is drawn once")
        seen.add(pair)
    by_period: dict[str, list[str]] = {}
    for customer, label in normalised:
        by_period.setdefault(label, []).append(customer)

    drawn: dict[tuple[str, str], DrawnRelease] = {}
    for label, customers in by_period.items():
        for i in range(0, len(customers), max_batch):
            preps = _prepare_all(con, customers[i : i + max_batch], label, policy)
            groups: dict[tuple, list[_Prepared]] = {}
            for prep in preps:
                if all(q.batchable for q in prep.plan.queries):
                    groups.setdefault(prep.plan.signature(), []).append(prep)
            batches = [g for g in groups.values() if len(g) >= 2]
            in_batch = {id(p) for g in batches for p in g}
            for batch in batches:
                _draw_batch(batch, label, policy, drawn)
            for prep in preps:  # after the batches: a failing batch leaves nothing drawn
                if id(prep) not in in_batch:
                    drawn[(prep.customer_id, label)] = _draw_one(prep, policy)
    return [drawn[pair] for pair in normalised]


def _draw_batch(batch: list[_Prepared], label: str, policy: ReleasePolicy, drawn: dict) -> None:
    """One OpenDP measurement for the customers of ``batch`` (same period, same plan); results into ``drawn``."""
    from privacy.measure import measure_batch

    measured = measure_batch({p.customer_id: p.frame for p in batch},  # type: ignore[misc]
                             {p.customer_id: p.plan for p in batch})  # fmt: skip
    for prep in batch:
        prep.frame = None  # individual rows go no further than the measurement
    cells = _figures(measured, pl.concat([p.structure.public_headcount for p in batch]), policy, label)
    by_customer = cells.partition_by("customer_id", as_dict=True, maintain_order=True)
    for prep in batch:
        part = by_customer.get((prep.customer_id,))
        drawn[(prep.customer_id, label)] = _drawn(prep, part if part is not None else cells.clear())
