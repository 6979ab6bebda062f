"""One customer-period release: public keys → DuckDB reduction → OpenDP → DuckDB thresholds.

Privacy reason: this is the only path from raw tables to publishable numbers. It reads
``events`` and ``headcount`` through the caller's connection, writes nothing, and draws the
noise exactly once (the caller stores the draw; re-running must serve the stored release).
The returned cells are post-processing of one OpenDP measurement whose total loss is
:func:`privacy.budget.release_cost`; the caller checks and records the budget *before*
calling this function.

:func:`draw_release` draws one customer-period; :func:`draw_releases` draws many (the life
cycle's "all due" path), measuring the customers of one period together in one OpenDP
measurement with exactly the per-customer scales and cost of single releases.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import duckdb
import polars as pl

from privacy.budget import Cost, release_cost
from privacy.periods import Period, parse_period
from privacy.policy import ReleasePolicy
from privacy.reduce import Bounds, Reduced, reduce_people, reduce_period, reduce_usage
from privacy.structure import PublicStructure, load_structure
from privacy.suppression import apply_thresholds, apply_thresholds_batch

if TYPE_CHECKING:
    from privacy.measure import Measured

# Customers per OpenDP measurement in draw_releases. Bounds the reduced rows held at once
# (≈ 3,000 people and ≈ 10,000 usage rows per customer-month of 3,000 engaged employees);
# the per-customer gain is mostly reached by then.
MAX_BATCH = 20


@dataclass(frozen=True)
class DrawnRelease:
    """A drawn release: cells after thresholds and the public headcount it was computed against."""

    customer_id: str
    period: str
    granularity: str
    cost: Cost
    cells: pl.DataFrame
    public_headcount: pl.DataFrame


@dataclass(eq=False)
class _Prepared:
    """Everything of one request that is known before drawing (public) plus its reduced frame."""

    customer_id: str
    period: Period
    cost: Cost
    structure: PublicStructure
    bounds: Bounds
    tables: tuple[str, ...]
    frame: Reduced | None  # individual rows: dropped as soon as they are measured
    specs: list  # list[QuerySpec]
    total_budget: float


def _plan(con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy) -> _Prepared:
    """Everything of one request that is public (cost, structure, query plan); no individual rows yet."""
    from privacy.measure import plan_queries

    p = parse_period(period)
    cost = release_cost(policy, p.label)  # also refuses a period with nothing to release
    tables = policy.tables_for(p.granularity)
    total_budget = cost.rho if policy.accounting == "zcdp" else cost.epsilon
    structure = load_structure(con, customer_id, p.label, policy.k)  # refuses a customer without a headcount
    bounds = Bounds.for_period(policy, p)
    specs = plan_queries(policy, tables, bounds, structure.people_keys(), total_budget)
    return _Prepared(customer_id, p, cost, structure, bounds, tables, None, specs, total_budget)


def _prepare(con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy) -> _Prepared:
    """:func:`_plan` plus the reduced frame."""
    prep = _plan(con, customer_id, period, policy)
    prep.frame = reduce_period(
        con, customer_id, prep.period, prep.bounds, prep.structure.key_map,
        with_services="services" in prep.tables, with_topics="topics" in prep.tables,
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


def _drawn(prep: _Prepared, cells: pl.DataFrame) -> DrawnRelease:
    return DrawnRelease(
        customer_id=prep.customer_id,
        period=prep.period.label,
        granularity=prep.period.granularity,
        cost=prep.cost,
        cells=cells,
        public_headcount=prep.structure.public_headcount,
    )


def draw_release(
    con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy
) -> DrawnRelease:
    """Draw the release of ``customer_id`` for ``period`` (``YYYY-MM`` or ``YYYY-Qn``), once.

    Privacy unit: one employee. Budget consumed: ``release_cost(policy, period)`` (ρ-zCDP or
    ε-DP), split over the tables released at the period's granularity by ``policy.weights``.
    Bounds: ``policy.max_*`` contribution bounds, scores clamped to their contract ranges.
    """
    from privacy.measure import measure_loading

    prep = _plan(con, customer_id, period, policy)  # public checks first: nothing is read or drawn if they fail
    with_usage = any(s.part == "usage" and s.budget > 0 for s in prep.specs)
    # the usage part (its reduction, then its OpenDP query) runs in a second thread, on its own connection
    cursor = _reading_cursor(con) if with_usage else None
    try:
        measured = measure_loading(
            lambda: reduce_people(con, customer_id, prep.period, prep.bounds, prep.structure.key_map),
            lambda: reduce_usage(cursor, customer_id, prep.period, prep.bounds,
                                 with_services="services" in prep.tables, with_topics="topics" in prep.tables),
            prep.specs, policy, prep.total_budget,
        )  # fmt: skip
    finally:
        if cursor is not None:
            cursor.close()
    return _thresholds_one(prep, measured, policy)


def _draw_one(prep: _Prepared, policy: ReleasePolicy) -> DrawnRelease:
    from privacy.measure import measure

    measured = measure(prep.frame, prep.specs, policy, prep.total_budget)
    prep.frame = None  # individual rows go no further than the measurement
    return _thresholds_one(prep, measured, policy)


def _thresholds_one(prep: _Prepared, measured: "Measured", policy: ReleasePolicy) -> DrawnRelease:
    cells = apply_thresholds(
        measured.noisy,
        prep.structure.public_headcount,
        customer_id=prep.customer_id,
        period=prep.period.label,
        k=policy.k,
        k_scores=policy.k_scores,
        z=policy.z,
    )
    return _drawn(prep, cells)


def draw_releases(
    con: duckdb.DuckDBPyConnection,
    requests: Sequence[tuple[str, str]],
    policy: ReleasePolicy,
    *,
    max_batch: int = MAX_BATCH,
) -> list[DrawnRelease]:
    """Draw several releases under one policy, once each; the result is in the order of ``requests``.

    ``requests`` are (customer_id, period) pairs, each drawn at most once (a repeated pair is
    refused: drawing twice would re-noise a release). Requests of the same period are measured
    together, up to ``max_batch`` customers per OpenDP measurement
    (:func:`privacy.measure.measure_batch`): the identifier is (customer, employee) and each
    customer's cells depend on that customer's employees only, so every customer's release has
    exactly the noise scales, intervals, thresholds and cost (``release_cost(policy, period)``,
    asserted against OpenDP's own privacy map) of :func:`draw_release`, and is charged to that
    customer's ledger alone. A customer whose public keys are fewer than the cells OpenDP would
    account in a batch (a very small organisation) is drawn on its own with :func:`draw_release`'s
    path. The caller checks and records each customer's budget *before* calling (a refused
    customer is simply left out of ``requests``) and stores every returned draw.

    Errors are those of :func:`draw_release` (``StructureError`` for a customer without a
    headcount file, ``AccountingMismatch``, ``ValueError``) and abort the whole call: nothing is
    returned, so nothing can be stored or spent; the caller may then draw the remaining requests
    one by one with :func:`draw_release` to isolate the failing one.

    Faster than one :func:`draw_release` per request because the per-measurement work (OpenDP
    compositor, plan checks, the threshold statement) is paid once per batch.
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
            batchable = [p for p in preps if _batchable(p)]
            if len(batchable) < 2:
                batchable = []
            alone = [p for p in preps if not any(p is b for b in batchable)]
            if batchable:
                _draw_batch(batchable, label, policy, drawn)
            for prep in alone:  # after the batch: a failing batch leaves nothing drawn
                drawn[(prep.customer_id, label)] = _draw_one(prep, policy)
    return [drawn[pair] for pair in normalised]


def _draw_batch(batchable: list[_Prepared], label: str, policy: ReleasePolicy, drawn: dict) -> None:
    """One OpenDP measurement for the customers of ``batchable`` (same period); results into ``drawn``."""
    from privacy.measure import measure_batch

    measured = measure_batch(
        {p.customer_id: p.frame for p in batchable},
        {p.customer_id: p.specs for p in batchable},
        policy,
        batchable[0].total_budget,
    )
    for prep in batchable:
        prep.frame = None  # individual rows go no further than the measurement
    cells = apply_thresholds_batch(
        measured.noisy,
        pl.concat([p.structure.public_headcount for p in batchable]),
        period=label,
        k=policy.k,
        k_scores=policy.k_scores,
        z=policy.z,
    )
    by_customer = cells.partition_by("customer_id", as_dict=True, maintain_order=True)
    for prep in batchable:
        part = by_customer.get((prep.customer_id,))
        drawn[(prep.customer_id, label)] = _drawn(prep, part if part is not None else cells.clear())


def _batchable(prep: _Prepared) -> bool:
    """Would a batch account exactly this customer's single-release loss? (see ``QuerySpec.batchable``)"""
    return all(s.batchable for s in prep.specs)
