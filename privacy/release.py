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
cycle's "all due" path): each customer's periods reduced in one pass, the customer-periods whose
plans are equal measured together in one OpenDP measurement (identifier (customer, period,
employee)) with exactly the scales and cost of single releases; :func:`prepare_releases` is its
pre-noise part, which the caller may run one customer ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from privacy.reduce import PeriodRequest, Reduced, reduce_people, reduce_periods, reduce_usage
from privacy.structure import PublicStructure, load_structure, load_structures
from privacy.suppression import apply_thresholds

if TYPE_CHECKING:
    from privacy.measure import Measured

# Customer-periods per OpenDP measurement in draw_releases. Bounds the reduced rows of one
# measurement (≈ 3,000 people and ≈ 10,000 usage rows per customer-month of 3,000 engaged
# employees, far below measure.MAX_LENGTH); the per-release gain is mostly reached by then.
MAX_BATCH = 32


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


def reading_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
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


def draw_release(con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy) -> DrawnRelease:
    """Draw the release of ``customer_id`` for ``period`` (``YYYY-MM`` or ``YYYY-Qn``), once.

    Privacy unit: one employee. Budget consumed: ``release_cost(policy, period)`` (ρ-zCDP or
    ε-DP), split over the measured figures by the plan (:func:`privacy.plan.plan_release`).
    Bounds: ``policy.max_*`` contribution bounds, scores clamped to their contract ranges.
    """
    from privacy.measure import measure_loading

    prep = _plan(con, customer_id, period, policy)  # public checks first: nothing is read or drawn if they fail
    with_usage = any(q.part == "usage" for q in prep.plan.queries)
    # the usage part (its reduction, then its OpenDP query) runs in a second thread, on its own connection
    cursor = reading_cursor(con) if with_usage else None
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


@dataclass(frozen=True)
class PreparedReleases:
    """The public plans and reduced frames of several periods of one customer (:func:`prepare_releases`).

    Holds individual rows (the reduced frames) until :func:`draw_releases` measures them; never
    leaves the pipeline process.
    """

    customer_id: str
    periods: tuple[str, ...]
    preps: tuple[_Prepared, ...]


def prepare_releases(
    con: duckdb.DuckDBPyConnection, customer_id: str, periods: Sequence[str], policy: ReleasePolicy
) -> PreparedReleases:
    """Everything of a customer's releases that comes before the noise: structures, plans, reduction.

    Reads only (the caller may run it on a cursor in another thread while it draws another
    customer). Nothing is drawn; :func:`draw_releases` takes the result as ``prepared``.
    """
    labels = [parse_period(p).label for p in periods]
    return PreparedReleases(customer_id, tuple(labels), tuple(_prepare_customer(con, customer_id, labels, policy)))


def draw_releases(
    con: duckdb.DuckDBPyConnection,
    requests: Sequence[tuple[str, str]],
    policy: ReleasePolicy,
    *,
    max_batch: int = MAX_BATCH,
    prepared: Sequence[PreparedReleases] = (),
) -> list[DrawnRelease]:
    """Draw several releases under one policy, once each; the result is in the order of ``requests``.

    ``requests`` are (customer_id, period) pairs, any customers and periods, each drawn at most
    once (a repeated pair is refused: drawing twice would re-noise a release). Per customer, the
    public structure is read once and rolled up once per headcount snapshot
    (:func:`privacy.structure.load_structures`), and the events of all its requested periods are
    reduced in one pass (:func:`privacy.reduce.reduce_periods`, equal to the single-period
    reduction of each). Then every request whose plan has the same signature (same queries and
    noise scales: :meth:`ReleasePlan.signature`) is measured together, up to ``max_batch``
    customer-periods per OpenDP measurement (:func:`privacy.measure.measure_batch`): the
    identifier is (customer, period, employee), so one person in one customer-month is one
    unit, and each customer-period's cells depend on that customer-period's rows only. Every
    release therefore has exactly the noise scales, intervals, thresholds and cost
    (``release_cost(policy, period)``, asserted against OpenDP's own privacy map for one
    identifier) of :func:`draw_release`, and is charged to its own ledger row by the caller: a
    person's loss over several periods composes exactly as if they were drawn one by one. A
    request whose plan no other shares, or whose public keys are fewer than the cells OpenDP
    would account in a batch, is drawn on its own. The caller checks and records each release's
    budget *before* calling and stores every returned draw.

    ``prepared``: :func:`prepare_releases` results for some customers of ``requests`` (their
    requested periods exactly, in order; checked), used instead of preparing them here. Each is
    consumed: its frames are dropped once measured.

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
    by_customer: dict[str, list[str]] = {}
    for customer, label in normalised:
        by_customer.setdefault(customer, []).append(label)

    given = {p.customer_id: p for p in prepared}
    preps: list[_Prepared] = []
    for customer, labels in by_customer.items():
        ready = given.pop(customer, None)
        if ready is None:
            preps.extend(_prepare_customer(con, customer, labels, policy))
            continue
        if list(ready.periods) != labels or any(p.frame is None for p in ready.preps):
            raise ValueError(f"the prepared releases of {customer!r} do not match the request (or were drawn already)")
        preps.extend(ready.preps)
    if given:
        raise ValueError(f"prepared releases of {sorted(given)} were passed but not requested")

    drawn: dict[tuple[str, str], DrawnRelease] = {}
    groups: dict[tuple, list[_Prepared]] = {}
    alone: list[_Prepared] = []
    for prep in preps:
        if all(q.batchable for q in prep.plan.queries):
            groups.setdefault(prep.plan.signature(), []).append(prep)
        else:
            alone.append(prep)
    batches: list[list[_Prepared]] = []
    for group in groups.values():
        if len(group) < 2:
            alone.extend(group)
            continue
        chunks = [group[i : i + max_batch] for i in range(0, len(group), max_batch)]
        if len(chunks[-1]) < 2 and len(chunks) > 1:  # never a batch of one after a full one
            chunks[-2].extend(chunks.pop())
        batches.extend(chunks)
    for batch in batches:
        _draw_batch(batch, policy, drawn)
    for prep in alone:  # after the batches: a failing batch leaves nothing drawn
        drawn[(prep.customer_id, prep.period.label)] = _draw_one(prep, policy)
    return [drawn[pair] for pair in normalised]


def _prepare_customer(
    con: duckdb.DuckDBPyConnection, customer_id: str, labels: list[str], policy: ReleasePolicy
) -> list[_Prepared]:
    """Public facts of several periods of one customer (structure read once), then one reduction pass."""
    structures = load_structures(con, customer_id, labels, policy.k)  # refuses a customer without a headcount
    preps: list[_Prepared] = []
    for label in labels:
        p = parse_period(label)
        plan = plan_release(policy, p.label, structures[label])  # also refuses a period with nothing to release
        preps.append(_Prepared(customer_id, p, Cost.of(plan.budget, policy.delta), structures[label], plan, None))
    frames = reduce_periods(con, customer_id, [
        PeriodRequest(prep.period, prep.plan.bounds, prep.structure.key_map,
                      with_services="services" in prep.plan.tables, with_topics="topics" in prep.plan.tables)
        for prep in preps
    ])  # fmt: skip
    for prep in preps:
        prep.frame = frames[prep.period.label]
    return preps


_UNIT_SEP = "\x1f"  # (customer, period) -> one batch key; never in a customer id or a period label


def _unit(prep: _Prepared) -> str:
    return f"{prep.customer_id}{_UNIT_SEP}{prep.period.label}"


def _draw_batch(batch: list[_Prepared], policy: ReleasePolicy, drawn: dict) -> None:
    """One OpenDP measurement for the customer-periods of ``batch`` (same plan signature); results into ``drawn``.

    Each customer-period is its own unit of the batch (``measure_batch`` keys, so the identifier
    is (customer, period, employee)); the post-processing runs per unit (every rule of
    consistency, estimates and thresholds joins on the key), then each unit's cells get its
    customer and period back.
    """
    from privacy.measure import measure_batch

    if any(_UNIT_SEP in p.customer_id for p in batch):
        raise ValueError("a customer id contains a control character; draw it on its own")
    measured = measure_batch({_unit(p): p.frame for p in batch},  # type: ignore[misc]
                             {_unit(p): p.plan for p in batch})  # fmt: skip
    for prep in batch:
        prep.frame = None  # individual rows go no further than the measurement
    headcount = pl.concat([p.structure.public_headcount.with_columns(customer_id=pl.lit(_unit(p))) for p in batch])
    cells = _figures(measured, headcount, policy, batch[0].period.label)
    by_unit = cells.partition_by("customer_id", as_dict=True, maintain_order=True)
    for prep in batch:
        part = by_unit.get((_unit(prep),))
        part = (part if part is not None else cells.clear()).with_columns(
            customer_id=pl.lit(prep.customer_id, pl.String), period=pl.lit(prep.period.label, pl.String)
        )
        drawn[(prep.customer_id, prep.period.label)] = _drawn(prep, part)
