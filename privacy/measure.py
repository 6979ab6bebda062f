"""OpenDP execution of a planned release: the only module that imports OpenDP (lazily).

The plan (:mod:`privacy.plan`) is data-free: which queries, which aggregates, their budgets
and noise scales. This module runs it on the per-employee reduction (:mod:`privacy.reduce`).

Privacy unit: one employee (identifier column ``employee``), across all time. OpenDP
re-enforces the reduction's bounds by truncation:

* **people** (one query per breakdown level: total, department, site, role): each query first
  aggregates the frame to one row per employee (``group_by(employee)``, OpenDP's identifier
  truncation), so one employee touches exactly one cell of the breakdown (``L₀ = 1``); counts
  and clipped sums are measured per cell;
* **usage** (one query for services and topics): at most one row per (employee, cell) and at
  most ``G = max_services_per_period + max_topics_per_period`` rows, hence cells, per employee
  (``L₀ = G``).

Every aggregate's noise scale comes from the plan, is passed to OpenDP explicitly, and OpenDP's
own privacy map of every query is asserted to equal the plan's hand-computed loss (defence
against upstream under-accounting such as opendp#2945). The two parts are measured by two
compositors over their own frames (sequential composition); together they hold exactly the
release cost of :func:`privacy.budget.release_cost`.

Only OpenDP's ``contrib`` feature is enabled (the Polars API needs it); never
``floating-point`` or ``honest-but-curious``. All aggregates are integer, so no float
arithmetic is involved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import polars as pl

from privacy import _opendp_compat as compat
from privacy.plan import PEOPLE_DIMENSIONS, REMAINDER, QuerySpec, ReleasePlan
from privacy.reduce import METRICS, Reduced

CELL = "cell"  # integer id of a key (dimension, group_value) inside OpenDP
NO_KEY = 0  # cell id never given to a key (a usage value outside the contract lists is dropped)
# Public upper bound on rows per cell (contract: headcount ≤ 10 million). OpenDP needs it only
# to rule out integer overflow; sensitivities come from truncation (checked by the map assertion).
MAX_LENGTH = 10_000_000
# Narrow integer types for the measured columns: OpenDP serialises the whole frame into its
# compositor, so bytes cost time. Each type holds MAX_LENGTH × the column's per-row bound, so
# OpenDP's overflow check still passes (contacts up to 100 × 3 months and centred satisfaction up
# to 200 per row need 64 bits).
NARROW_TYPES: dict[str, pl.DataType] = {
    "contacts": pl.Int64(), "has_who5": pl.Int32(), "who5_c": pl.Int32(), "low_pm": pl.Int32(),
    "has_chg": pl.Int32(), "imp_pm": pl.Int32(), "has_sat": pl.Int32(), "sat_c": pl.Int64(),
}  # fmt: skip
MAP_TOLERANCE = 1e-6


class AccountingMismatch(RuntimeError):
    """OpenDP's privacy loss of a query differs from the hand-computed one: refuse to release."""


@dataclass(frozen=True)
class Measured:
    """Noisy outputs of one release, long: [customer_id,] part, dimension, group_value, aggregate, value, scale, sd.

    ``sd`` is the standard deviation of the noise (σ for Gaussian, √2·scale for Laplace); the
    remainder cells (:data:`privacy.plan.REMAINDER`) are included (measured, never published).
    ``compositor_loss`` is the total loss the compositors were built with; ``query_losses``
    OpenDP's privacy map of each query that ran.
    """

    noisy: pl.DataFrame
    compositor_loss: float
    query_losses: tuple[float, ...]
    summaries: tuple[pl.DataFrame, ...]


@lru_cache(maxsize=1)
def _dp() -> Any:
    """The OpenDP API used here, without ``opendp.prelude``.

    The prelude also imports OpenDP's scikit-learn extras (scikit-learn and SciPy: ~1.3 s of a
    cold release); the modules below are all a release needs.
    """
    from types import SimpleNamespace

    import opendp.context as context
    import opendp.extras.polars as dp_polars  # registers the ``.dp`` expression namespace
    import opendp.measurements as measurements
    from opendp.mod import enable_features

    enable_features("contrib")
    return SimpleNamespace(
        Context=context.Context, loss_of=context.loss_of, unit_of=context.unit_of,
        polars=dp_polars, len=dp_polars.dp_len, m=measurements,
    )  # fmt: skip


def load_opendp() -> None:
    """Import the OpenDP modules a release uses now (a process preloading before its work)."""
    _dp()


def measure(frame: Reduced, plan: ReleasePlan) -> Measured:
    """Draw the noise of one release, once: one OpenDP query per planned query.

    Privacy: the compositors hold ``plan.budget`` in total for the employee-level unit; each
    query's loss (OpenDP's map) must equal the plan's hand-computed one.
    """
    return measure_loading(lambda: frame.people, lambda: frame.usage, plan)


def measure_loading(
    load_people: Callable[[], pl.DataFrame], load_usage: Callable[[], pl.DataFrame], plan: ReleasePlan
) -> Measured:
    """:func:`measure` with each part's frame produced by its loader, inside that part's thread.

    The people and usage parts are independent (own frame, own compositor), so the usage part
    (its DuckDB reduction, then its OpenDP query) runs beside the people part from the start.
    ``load_usage`` runs in a second thread: give it its own DuckDB connection (a cursor). A
    loader is called at most once, and not at all for a part without a query. If either part
    fails the call raises and returns nothing (the other part's draw, if made, is discarded
    unseen), so nothing can be stored or charged.
    """
    return _measure({"people": lambda: {None: load_people()}, "usage": lambda: {None: load_usage()}}, {None: plan})


def measure_batch(frames: Mapping[str, Reduced], plans: Mapping[str, ReleasePlan]) -> Measured:
    """Draw the releases of several customers of one period in one OpenDP measurement, once.

    ``frames`` and ``plans`` are keyed by customer (each as for :func:`measure`); ``noisy``
    gets a leading ``customer_id`` column. The identifier is (customer, employee): every
    customer's employees are relabelled to integer ids disjoint from the other customers', and
    every key becomes a cell of its own customer, so one person's rows touch only their own
    customer's cells (one per people query, at most ``G`` in the usage query, enforced again
    by OpenDP's truncation). The cells of one customer are therefore a function of that
    customer's data alone (parallel composition), and OpenDP's privacy map for one identifier
    (``d_in = 1``), asserted equal to the single-release loss, is exactly what each customer's
    ledger is charged.

    Refused (``ValueError``) unless every customer's plan has the same signature (queries and
    noise scales) and every query is :attr:`QuerySpec.batchable`.
    """
    if not frames or set(frames) != set(plans):
        raise ValueError("measure_batch needs one frame and one plan per customer")
    template = next(iter(plans.values())).signature()
    for customer, plan in plans.items():
        if plan.signature() != template:
            raise ValueError(
                f"customer {customer!r} has other queries or noise scales than the rest of the batch; draw it on its own"
            )
        for spec in plan.queries:
            if not spec.batchable:
                raise ValueError(
                    f"customer {customer!r} has only {spec.keys.height} public keys in its {spec.part} query "
                    f"(fewer than the {spec.groups} cells OpenDP would account in a batch); draw it on its own"
                )
    by_customer: dict[str | None, Reduced] = {c: f for c, f in frames.items()}
    plan_of: dict[str | None, ReleasePlan] = {c: p for c, p in plans.items()}
    return _measure(
        {
            "people": lambda: {c: f.people for c, f in by_customer.items()},
            "usage": lambda: {c: f.usage for c, f in by_customer.items()},
        },
        plan_of,
    )


@dataclass(frozen=True)
class _Coded:
    """One part's frame of all customers with integer identifiers and cells, and its cell dictionary."""

    data: (
        pl.DataFrame
    )  # people: employee, total, department, site, role (cell ids), NARROW_TYPES; usage: employee, cell
    cells: pl.DataFrame  # cell, [customer_id,] dimension, group_value


def _code(
    part: str, frames: dict[str | None, pl.DataFrame], plans: dict[str | None, ReleasePlan], batched: bool
) -> _Coded:
    """Relabel one part's identifiers and keys to integers (public bijections, applied before OpenDP).

    Identifiers are only used to group an employee's rows, so a bijective relabelling does not
    change the output distribution; 32-bit ids make OpenDP's (de)serialisation cheaper. In a
    batch each customer's employees get their own id range (the identifier is (customer,
    employee)) and each key ((customer,) dimension, group_value) one cell id, never after
    truncation (opendp#2949). A people home without a public key in a breakdown goes to that
    breakdown's remainder cell; a usage row whose value is not a key is dropped. Each part has
    its own id spaces: the parts are measured by separate compositors over separate frames.
    """
    pieces, all_cells, lookups = [], [], []
    next_cell, next_employee = NO_KEY + 1, 0
    for unit, (customer, frame) in enumerate(frames.items()):
        keys = pl.concat([q.keys for q in plans[customer].queries if q.part == part]).unique(maintain_order=True)
        cells = keys.select(
            pl.int_range(next_cell, next_cell + keys.height, dtype=pl.UInt32).alias(CELL), "dimension", "group_value"
        )
        next_cell += keys.height
        lookups.append(cells.with_columns(pl.lit(unit, pl.UInt32).alias("_unit")))
        if batched:
            cells = cells.insert_column(1, pl.lit(customer, pl.String).alias("customer_id"))
        all_cells.append(cells)
        ids = (pl.col("employee").rank("dense").cast(pl.UInt32) + next_employee).alias("employee")
        if part == "people":
            compat.assert_no_nulls(frame, ["employee", *METRICS])
            pieces.append(frame.select(
                ids, pl.lit(unit, pl.UInt32).alias("_unit"), pl.lit("all").alias("total"),
                *[pl.col(dim) for dim in PEOPLE_DIMENSIONS if dim != "total"],
                *[pl.col(c).cast(t) for c, t in NARROW_TYPES.items()],
            ))  # fmt: skip
        else:
            compat.assert_no_nulls(frame, ["employee", "dimension", "group_value"])
            pieces.append(frame.select(ids, pl.lit(unit, pl.UInt32).alias("_unit"), "dimension", "group_value"))
        next_employee += frame["employee"].n_unique()  # the ranks are 1..(distinct employees)
    data = pl.concat(pieces) if len(pieces) > 1 else pieces[0]
    lookup = pl.concat(lookups)
    if part == "people":
        # each breakdown's value -> its cell of the same unit; not a key -> the unit's remainder cell
        # of that breakdown; a breakdown without a query has no cells: NO_KEY (never read)
        lazy = data.lazy()
        for dim in PEOPLE_DIMENSIONS:
            cells_of = lookup.lazy().filter(pl.col("dimension") == dim)
            remainder = cells_of.filter(pl.col("group_value") == REMAINDER).select("_unit", pl.col(CELL).alias("_rest"))
            lazy = (
                lazy.join(cells_of.select("_unit", pl.col("group_value").alias(dim), pl.col(CELL).alias("_cell")),
                          on=["_unit", dim], how="left", maintain_order="left")
                .join(remainder, on="_unit", how="left", maintain_order="left")
                .with_columns(pl.coalesce("_cell", "_rest", pl.lit(NO_KEY, pl.UInt32)).cast(pl.UInt32).alias(dim))
                .drop("_cell", "_rest")
            )  # fmt: skip
        data = lazy.select("employee", *PEOPLE_DIMENSIONS, *NARROW_TYPES).collect()
    else:
        data = (
            data.lazy()
            .join(lookup.lazy().select("_unit", "dimension", "group_value", CELL),
                  on=["_unit", "dimension", "group_value"], how="inner", maintain_order="left")
            .select("employee", CELL)
            .collect()
        )  # fmt: skip
    if data.height > MAX_LENGTH:
        # the margins claim at most MAX_LENGTH rows (OpenDP's overflow reasoning rests on it)
        raise ValueError(f"more than {MAX_LENGTH:,} reduced rows in one measurement; draw fewer customers at a time")
    return _Coded(data, pl.concat(all_cells))


Loaders = dict[str, Callable[[], dict[str | None, pl.DataFrame]]]


def _measure(loaders: Loaders, plans: dict[str | None, ReleasePlan]) -> Measured:
    """Both parts of one or more customers' releases (customer key ``None``: a single release).

    ``loaders[part]()`` gives the part's frame of every customer. The people and the usage
    part each have their own compositor over their own frame and are independent, so the usage
    part (load, code, measure) runs in a second thread beside the people part (OpenDP's and
    DuckDB's native calls release the GIL). Outputs are in the order of the plan.
    """
    batched = None not in plans
    plan = plans[next(iter(plans))]  # the same queries and scales for every customer (checked)
    planned = sum(q.budget.value for q in plan.queries)
    if abs(planned - plan.budget.value) > MAP_TOLERANCE * plan.budget.value:
        raise AccountingMismatch(f"the queries plan a loss of {planned!r}, not the release cost {plan.budget.value!r}")
    parts = [(part, [q for q in plan.queries if q.part == part]) for part in ("people", "usage")]
    parts = [(part, specs) for part, specs in parts if specs]
    _dp()  # import and enable OpenDP once, before any thread uses it

    def run(part: str, specs: list[QuerySpec]) -> _PartResult:
        coded = _code(part, loaders[part](), plans, batched)
        return _measure_part(part, specs, coded, batched, plan.budget.__class__, alpha=0.05)

    with ThreadPoolExecutor(max_workers=1) as pool:
        later = [pool.submit(run, part, specs) for part, specs in parts[1:]]
        done = [run(*parts[0]), *[f.result() for f in later]] if parts else []
    pieces = [piece for part in done for piece in part.pieces]
    return Measured(
        pl.concat(pieces).collect() if pieces else pl.DataFrame(),
        sum(part.compositor_loss for part in done),
        tuple(loss for part in done for loss in part.losses),
        tuple(summary for part in done for summary in part.summaries),
    )


@dataclass(frozen=True)
class _PartResult:
    compositor_loss: float
    pieces: list[pl.LazyFrame]
    losses: list[float]
    summaries: list[pl.DataFrame]


def _measure_part(
    part: str, specs: list[QuerySpec], coded: _Coded, batched: bool, budget_type: type, *, alpha: float
) -> _PartResult:
    """One compositor (the part's budget, over the part's frame) and the part's queries, in plan order."""
    dp = _dp()
    key_cols = ["customer_id", "dimension", "group_value"] if batched else ["dimension", "group_value"]
    margin_by = [] if part == "people" else [CELL]
    part_budget = budget_type(sum(q.budget.value for q in specs))
    # A compositor without a fixed split is a privacy filter over its part's budget: each
    # query asks for its planned share, and the filter refuses anything beyond the total.
    context = dp.Context.compositor(
        data=coded.data.lazy(),
        privacy_unit=dp.unit_of(contributions=1, identifier=pl.col("employee")),
        privacy_loss=dp.loss_of(**part_budget.opendp_loss()),
        margins=[dp.polars.Margin(by=margin_by, max_length=MAX_LENGTH)],
    )
    result = _PartResult(float(context.d_out), [], [], [])
    for spec in specs:
        # every customer's cells of this query (built from each customer's own keys by _code)
        dims = [spec.dimension] if spec.dimension is not None else spec.keys["dimension"].unique().to_list()
        cells = coded.cells.filter(pl.col("dimension").is_in(dims)).select(CELL)
        if cells.height == 0:
            raise AccountingMismatch(
                f"the {part} query ({spec.dimension or 'services/topics'}) has no cells to measure"
            )
        base = context.query(**spec.budget.opendp_loss())
        group: str
        if spec.part == "people":
            assert spec.dimension is not None  # a people query is one breakdown level
            group = spec.dimension
            columns = [a.column for a in spec.aggregates if a.column is not None]
            truncated = compat.one_row_per_identifier(base, "employee", group, columns)
        else:
            group = CELL
            truncated = compat.truncate_cells(base, "employee", CELL, spec.groups)
        exprs = [
            dp.len(signed=True, scale=a.scale).alias(a.name) if a.column is None
            else pl.col(a.column).dp.sum((a.lower, a.upper), scale=a.scale).alias(a.name)  # type: ignore[attr-defined]
            for a in spec.aggregates
        ]  # fmt: skip
        query = truncated.group_by(group).agg(*exprs).with_keys(cells.rename({CELL: group}))
        measurement, inner = compat.resolve_fixed(query, dp)
        opendp_loss = float(measurement.map(inner._d_in))
        expected = spec.expected_loss()
        if abs(opendp_loss - expected) > MAP_TOLERANCE * expected:
            raise AccountingMismatch(
                f"OpenDP accounts {opendp_loss!r} for the {spec.part} query ({spec.dimension or 'services/topics'}) "
                f"but the hand-computed loss is {expected!r}: a sensitivity differs from its bound; nothing was released"
            )
        result.summaries.append(_summary(measurement, spec, alpha))
        out = compat.release(inner, measurement)  # noise drawn here, once
        result.losses.append(opendp_loss)
        names = [a.name for a in spec.aggregates]
        stats = pl.LazyFrame(
            {"aggregate": names, "scale": [a.scale for a in spec.aggregates], "sd": [a.sd for a in spec.aggregates]}
        )
        result.pieces.append(
            out.lazy()
            .select(pl.col(group).alias(CELL), *[pl.col(n).cast(pl.Float64) for n in names])
            .unpivot(index=CELL, on=names, variable_name="aggregate", value_name="value")
            .join(coded.cells.lazy(), on=CELL)
            .join(stats, on="aggregate")
            .select(*key_cols[:-2], pl.lit(spec.part).alias("part"), "dimension", "group_value", "aggregate", "value",
                    "scale", "sd")
        )  # fmt: skip
    return result


# Query plan signature -> OpenDP's summary (scales). A summary is a data-free function of the
# measurement's noise mechanisms and their scales, which are fixed by the plan, so it is computed
# by OpenDP, and its scales checked against ours, once per plan and process. The privacy-map
# assertion (OpenDP's loss for one employee = ours) still runs on every release.
_SUMMARIES: dict[tuple, pl.DataFrame] = {}


def _summary(measurement: Any, spec: QuerySpec, alpha: float) -> pl.DataFrame:
    from opendp.accuracy import summarize_polars_measurement

    key = (spec.signature(), alpha)
    cached = _SUMMARIES.get(key)
    if cached is None:
        cached = summarize_polars_measurement(measurement, alpha)
        _check_scales(cached, spec)
        if len(_SUMMARIES) > 256:  # a handful of plans per process; never grows unbounded
            _SUMMARIES.clear()
        _SUMMARIES[key] = cached
    return cached


def _check_scales(summary: pl.DataFrame, spec: QuerySpec) -> None:
    scales = dict(zip(summary["column"], summary["scale"]))
    for a in spec.aggregates:
        got = scales.get(a.name)
        if got is None or abs(got - a.scale) > 1e-9 * a.scale:
            raise AccountingMismatch(
                f"OpenDP reports noise scale {got!r} for {spec.part}.{a.name}, expected {a.scale!r}; nothing was released"
            )
