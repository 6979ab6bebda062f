"""OpenDP measurements of one release: the only module that imports OpenDP (lazily).

Privacy unit: one employee (identifier column ``employee``), across all time. The frames
measured are the per-employee reduction (:mod:`privacy.reduce`); OpenDP re-enforces its bounds
by truncation:

* **people** (one query per breakdown: total, department, site, role): each query first
  aggregates the frame to one row per employee (``group_by(employee)``, OpenDP's
  identifier truncation), so one employee touches exactly one cell of the breakdown
  (``L₀ = 1``); the engaged count, contacts and score sums are measured per cell;
* **usage** (one query for services and topics): at most one row per (employee, cell) and at
  most ``G = max_services_per_period + max_topics_per_period`` rows, hence cells, per employee
  (``L₀ = G``).

Every aggregate's noise scale is computed here from the policy and the bounds alone
(data-free), passed to OpenDP explicitly, and OpenDP's own privacy map of every query is
asserted to equal that hand-computed loss (defence against upstream under-accounting such as
opendp#2945). The two parts are measured by two compositors over their own frames
(sequential composition); together they hold exactly the release cost of
:func:`privacy.budget.release_cost`.

Noise (zCDP, default): discrete Gaussian with σ = b·√(L₀ / (2ρ)) for an aggregate with
per-employee bound ``b`` and budget ρ in a query accounting ``L₀`` cells per employee; pure DP:
discrete Laplace with scale b·L₀/ε. A people aggregate's weight share of the release budget is
split equally over the four breakdowns (ρ/4 each, L₀ = 1); the usage count's share goes to its
one query (L₀ from :func:`privacy._opendp_compat.accounted_groups`).

Only OpenDP's ``contrib`` feature is enabled (the Polars API needs it); never
``floating-point`` or ``honest-but-curious``. All aggregates are integer, so no float
arithmetic is involved.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping

import polars as pl

from privacy import _opendp_compat as compat
from privacy.policy import ReleasePolicy
from privacy.reduce import METRICS, Bounds, Reduced
from privacy.structure import BREAKDOWNS

PEOPLE_DIMENSIONS: tuple[str, ...] = ("total", *BREAKDOWNS)  # one people query each, L₀ = 1
CELL = "cell"  # integer id of a public key (dimension, group_value) inside OpenDP
NO_KEY = 0  # cell id of "no public key" (a home outside the headcount): never a key, never released
# Public upper bound on rows per cell (contract: headcount ≤ 10 million). OpenDP needs it only
# to rule out integer overflow; sensitivities come from truncation (checked by the map assertion).
MAX_LENGTH = 10_000_000
# Narrow integer types for the measured columns: OpenDP serialises the whole frame into its
# compositor, so bytes cost time. Each type holds MAX_LENGTH × the column's per-row bound, so
# OpenDP's overflow check still passes (contacts up to 100 × 3 months and satisfaction up to
# 500 per row need 64 bits).
NARROW_TYPES: dict[str, pl.DataType] = {
    "contacts": pl.Int64(), "who5": pl.Int32(), "has_who5": pl.Int32(), "sat": pl.Int64(), "has_sat": pl.Int32()
}
SCALE_SLACK = 1 + 1e-9  # scales a hair larger so float rounding never exceeds the allotted budget
MAP_TOLERANCE = 1e-6


class AccountingMismatch(RuntimeError):
    """OpenDP's privacy loss of a query differs from the hand-computed one: refuse to release."""


@dataclass(frozen=True)
class AggregateSpec:
    """One noisy aggregate: policy weight key, output name, measured column (None = count)."""

    key: str
    name: str
    column: str | None
    bound: int
    budget: float  # ρᵢ (zCDP) or εᵢ (pure) of this aggregate in this query
    scale: float  # σᵢ (Gaussian) or Laplace scale


@dataclass(frozen=True)
class QuerySpec:
    """One OpenDP query: a breakdown of the people frame, or the usage frame.

    ``dimension`` is the breakdown of a people query (None for usage); ``groups`` the cells one
    employee keeps; ``accounted_groups`` the cells OpenDP accounts per employee (``L₀``);
    ``keys`` the public keys (dimension, group_value).
    """

    part: str
    dimension: str | None
    groups: int
    accounted_groups: int
    aggregates: tuple[AggregateSpec, ...]
    keys: pl.DataFrame

    @property
    def budget(self) -> float:
        return sum(a.budget for a in self.aggregates)

    @property
    def batchable(self) -> bool:
        """Same accounting when measured in a batch of customers (whose keys add up)?

        A query accounts min(groups, keys) cells per employee, which in a batch is ``groups``:
        equal to a single draw's iff the customer has at least ``groups`` keys (always true of a
        people query, whose ``groups`` is 1).
        """
        return self.accounted_groups == self.groups

    def expected_loss(self, accounting: str) -> float:
        """Loss of the query from first principles, with the scales actually used."""
        if accounting == "zcdp":
            return sum(a.bound**2 * self.accounted_groups / (2 * a.scale**2) for a in self.aggregates)
        return sum(a.bound * self.accounted_groups / a.scale for a in self.aggregates)


# aggregate key -> (table, part, output name, column, bound attribute of Bounds or None for 1).
# Services and topics share one 'usage' count query (one truncation).
AGGREGATE_LAYOUT: dict[str, tuple[str, str, str, str | None, str | None]] = {
    "engaged": ("engagement", "people", "engaged", None, None),
    "contacts": ("engagement", "people", "contacts", "contacts", "contacts"),
    "who5_sum": ("wellbeing", "people", "who5_sum", "who5", "who5"),
    "who5_n": ("wellbeing", "people", "who5_n", "has_who5", None),
    "satisfaction_sum": ("wellbeing", "people", "satisfaction_sum", "sat", "sat"),
    "satisfaction_n": ("wellbeing", "people", "satisfaction_n", "has_sat", None),
    "service_engaged": ("services", "usage", "engaged", None, None),
    "topic_engaged": ("topics", "usage", "engaged", None, None),
}


def noise_scale(bound: int, groups_accounted: int, budget: float, accounting: str) -> float:
    """Noise scale giving loss ``budget`` to a count/sum with per-cell bound ``bound`` over ``groups_accounted`` cells."""
    if accounting == "zcdp":
        return bound * math.sqrt(groups_accounted / (2.0 * budget)) * SCALE_SLACK
    return bound * groups_accounted / budget * SCALE_SLACK


def plan_queries(
    policy: ReleasePolicy, tables: tuple[str, ...], bounds: Bounds, people_keys: pl.DataFrame, total_budget: float
) -> list[QuerySpec]:
    """The queries of a release (data-free): which aggregates, their budgets and noise scales.

    ``total_budget`` is the release cost (ρ or ε); each aggregate gets ``total × wᵢ / Σ w`` over
    the aggregates of the included ``tables``; a people aggregate's share is split equally over
    the :data:`PEOPLE_DIMENSIONS` queries. A breakdown without public keys gets a query plan
    too (its share is simply not spent): the scales never depend on the data.
    """
    from privacy.structure import usage_keys

    included = [k for k, lay in AGGREGATE_LAYOUT.items() if lay[0] in tables]
    weight_sum = sum(policy.weights[k] for k in included)
    usage_dims = [d for d, t in (("service", "services"), ("topic", "topics")) if t in tables]

    def aggregates(part: str, share: float, accounted: int) -> tuple[AggregateSpec, ...]:
        by_name: dict[str, list[str]] = {}
        for key in (k for k in included if AGGREGATE_LAYOUT[k][1] == part):
            by_name.setdefault(AGGREGATE_LAYOUT[key][2], []).append(key)
        out = []
        for name, agg_keys in by_name.items():
            _, _, _, column, bound_attr = AGGREGATE_LAYOUT[agg_keys[0]]
            bound = 1 if bound_attr is None else int(getattr(bounds, bound_attr))
            budget = total_budget * sum(policy.weights[k] for k in agg_keys) / weight_sum * share
            out.append(AggregateSpec("+".join(agg_keys), name, column, bound, budget,
                                     noise_scale(bound, accounted, budget, policy.accounting)))
        return tuple(out)

    specs: list[QuerySpec] = []
    if any(AGGREGATE_LAYOUT[k][1] == "people" for k in included):
        share = 1.0 / len(PEOPLE_DIMENSIONS)
        for dim in PEOPLE_DIMENSIONS:
            keys = people_keys.filter(pl.col("dimension") == dim).select("dimension", "group_value")
            specs.append(QuerySpec("people", dim, 1, 1, aggregates("people", share, 1), keys))
    if usage_dims:
        keys = pl.concat([usage_keys(d) for d in usage_dims])
        groups = (bounds.services if "service" in usage_dims else 0) + (bounds.topics if "topic" in usage_dims else 0)
        # an employee has at most one row per key: keeping more rows than keys keeps nothing more, and
        # truncating at the smaller bound accounts the same cells alone and in a batch (always batchable)
        groups = min(groups, keys.height)
        accounted = compat.accounted_groups(groups, keys.height)
        specs.append(QuerySpec("usage", None, groups, accounted, aggregates("usage", 1.0, accounted), keys))
    return specs


@dataclass(frozen=True)
class Measured:
    """Noisy outputs of one release, long: part, dimension, group_value, aggregate, value, scale, sd, acc, acc_half.

    ``sd`` is the standard deviation of the noise (σ for Gaussian, √2·scale for Laplace).

    ``acc`` is OpenDP's accuracy at ``alpha`` and ``acc_half`` at ``alpha/2`` (for ratio intervals).
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


def measure(frame: Reduced, specs: list[QuerySpec], policy: ReleasePolicy, total_budget: float) -> Measured:
    """Draw the noise of one release, once: one OpenDP query per planned query with public keys.

    Privacy: the compositors hold ``total_budget`` (ρ under zCDP, ε under pure DP) in total for
    the employee-level unit; each query's loss (OpenDP's map) must equal the hand-computed one.
    """
    return measure_loading(lambda: frame.people, lambda: frame.usage, specs, policy, total_budget)


def measure_loading(
    load_people: Callable[[], pl.DataFrame],
    load_usage: Callable[[], pl.DataFrame],
    specs: list[QuerySpec],
    policy: ReleasePolicy,
    total_budget: float,
) -> Measured:
    """:func:`measure` with each part's frame produced by its loader, inside that part's thread.

    The people and usage parts are independent (own frame, own compositor), so the usage part
    (its DuckDB reduction, then its OpenDP query) runs beside the people part from the start.
    ``load_usage`` runs in a second thread: give it its own DuckDB connection (a cursor). A
    loader is called at most once, and not at all for a part with no budget. If either part
    fails the call raises and returns nothing (the other part's draw, if made, is discarded
    unseen), so nothing can be stored or charged.
    """
    return _measure({"people": lambda: {None: load_people()}, "usage": lambda: {None: load_usage()}},
                    {None: specs}, policy, total_budget)


def measure_batch(
    frames: Mapping[str, Reduced],
    specs: Mapping[str, list[QuerySpec]],
    policy: ReleasePolicy,
    total_budget: float,
) -> Measured:
    """Draw the releases of several customers of one period in one OpenDP measurement, once.

    ``frames`` and ``specs`` are keyed by customer (each as for :func:`measure`); ``noisy``
    gets a leading ``customer_id`` column. The identifier is (customer, employee): every
    customer's employees are relabelled to integer ids disjoint from the other customers', and
    every public key becomes a cell of its own customer, so one person's rows touch only their
    own customer's cells (one per people query, at most ``G`` in the usage query, enforced again
    by OpenDP's truncation). The cells of one customer are therefore a function of that
    customer's data alone (parallel composition), and OpenDP's privacy map for one identifier
    (``d_in = 1``), asserted equal to the single-release loss, is exactly what each customer's
    ledger is charged: ``total_budget`` = ``release_cost(policy, period)``.

    Refused (``ValueError``) unless every customer has the same queries with the same noise
    scales, and every query is :attr:`QuerySpec.batchable` (a customer with fewer usage keys
    than the cells OpenDP would account in a batch must be drawn on its own).
    """
    if not frames or set(frames) != set(specs):
        raise ValueError("measure_batch needs one frame and one query plan per customer")
    template = _plan_signature(next(iter(specs.values())))
    for customer, plan in specs.items():
        if _plan_signature(plan) != template:
            raise ValueError(
                f"customer {customer!r} has other queries or noise scales than the rest of the batch; draw it on its own"
            )
        for spec in plan:
            if not spec.batchable:
                raise ValueError(
                    f"customer {customer!r} has only {spec.keys.height} public keys in its {spec.part} query "
                    f"(fewer than the {spec.groups} cells OpenDP would account in a batch); "
                    "draw it on its own"
                )
    frames = dict(frames)
    return _measure({"people": lambda: {c: f.people for c, f in frames.items()},
                     "usage": lambda: {c: f.usage for c, f in frames.items()}}, dict(specs), policy, total_budget)


def _plan_signature(specs: list[QuerySpec]) -> tuple:
    return tuple((s.part, s.dimension, s.groups, s.accounted_groups, s.aggregates) for s in specs)


@dataclass(frozen=True)
class _Coded:
    """One part's frame of all customers with integer identifiers and cells, and its cell dictionary."""

    data: pl.DataFrame  # people: employee, total, department, site, role (cell ids), NARROW_TYPES; usage: employee, cell
    cells: pl.DataFrame  # cell, [customer_id,] dimension, group_value


def _code(part: str, frames: dict[str | None, pl.DataFrame], specs_by: dict[str | None, list[QuerySpec]], batched: bool) -> _Coded:
    """Relabel one part's identifiers and public keys to integers (public bijections, applied before OpenDP).

    Identifiers are only used to group an employee's rows, so a bijective relabelling does not
    change the output distribution; 32-bit ids make OpenDP's (de)serialisation cheaper. In a
    batch each customer's employees get their own id range (the identifier is (customer,
    employee)) and each public key ((customer,) dimension, group_value) one cell id, never
    after truncation (opendp#2949). A people home without a public key gets :data:`NO_KEY`; a
    usage row whose value is not a public key is dropped. Each part has its own id spaces: the
    parts are measured by separate compositors over separate frames.
    """
    pieces, all_cells = [], []
    next_cell, next_employee = NO_KEY + 1, 0
    for customer, frame in frames.items():
        keys = pl.concat([s.keys for s in specs_by[customer] if s.part == part]).unique(maintain_order=True)
        cells = keys.select(
            pl.int_range(next_cell, next_cell + keys.height, dtype=pl.UInt32).alias(CELL), "dimension", "group_value"
        )
        next_cell += keys.height
        if batched:
            cells = cells.insert_column(1, pl.lit(customer, pl.String).alias("customer_id"))
        all_cells.append(cells)
        ids = (pl.col("employee").rank("dense").cast(pl.UInt32) + next_employee).alias("employee")
        if part == "people":
            compat.assert_no_nulls(frame, ["employee", *METRICS])
            pieces.append(
                frame.select(
                    ids,
                    *[_to_cell(pl.lit("all") if dim == "total" else pl.col(dim), cells, dim).alias(dim) for dim in PEOPLE_DIMENSIONS],
                    *[pl.col(c).cast(t) for c, t in NARROW_TYPES.items()],
                )
            )
        else:
            compat.assert_no_nulls(frame, ["employee", "dimension", "group_value"])
            pieces.append(
                frame.lazy()
                .with_columns(ids)
                .join(cells.lazy().select(CELL, "dimension", "group_value"), on=["dimension", "group_value"],
                      how="inner", maintain_order="left")
                .select("employee", CELL)
                .collect()
            )  # fmt: skip
        next_employee += frame["employee"].n_unique()  # the ranks are 1..(distinct employees)
    data = pl.concat(pieces) if len(pieces) > 1 else pieces[0]
    if data.height > MAX_LENGTH:
        # the margins claim at most MAX_LENGTH rows (OpenDP's overflow reasoning rests on it)
        raise ValueError(f"more than {MAX_LENGTH:,} reduced rows in one measurement; draw fewer customers at a time")
    return _Coded(data, pl.concat(all_cells))


def _to_cell(value: pl.Expr, cells: pl.DataFrame, dimension: str) -> pl.Expr:
    """The cell id of (dimension, value) in ``cells``; :data:`NO_KEY` when it is not a public key."""
    lookup = cells.filter(pl.col("dimension") == dimension)
    return value.replace_strict(lookup["group_value"], lookup[CELL], default=NO_KEY, return_dtype=pl.UInt32)


Loaders = dict[str, Callable[[], dict[str | None, pl.DataFrame]]]


def _measure(
    loaders: Loaders,
    specs_by: dict[str | None, list[QuerySpec]],
    policy: ReleasePolicy,
    total_budget: float,
) -> Measured:
    """Both parts of one or more customers' releases (customer key ``None``: a single release).

    ``loaders[part]()`` gives the part's frame of every customer. The people and the usage
    part each have their own compositor over their own frame and are independent, so the usage
    part (load, code, measure) runs in a second thread beside the people part (OpenDP's and
    DuckDB's native calls release the GIL). Outputs are in the order of the query plan.
    """
    batched = None not in specs_by
    specs = specs_by[next(iter(specs_by))]  # the same queries and scales for every customer (checked)
    planned = sum(s.budget for s in specs)
    if abs(planned - total_budget) > MAP_TOLERANCE * total_budget:
        raise AccountingMismatch(f"the queries plan a loss of {planned!r}, not the release cost {total_budget!r}")
    parts = [(part, [s for s in specs if s.part == part]) for part in ("people", "usage")]
    parts = [(part, part_specs) for part, part_specs in parts if sum(s.budget for s in part_specs) > 0]
    _dp()  # import and enable OpenDP once, before any thread uses it

    def run(part: str, part_specs: list[QuerySpec]) -> _PartResult:
        coded = _code(part, loaders[part](), specs_by, batched)
        return _measure_part(part, part_specs, coded, policy, batched)

    with ThreadPoolExecutor(max_workers=1) as pool:
        later = [pool.submit(run, part, part_specs) for part, part_specs in parts[1:]]
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
    part: str, specs: list[QuerySpec], coded: _Coded, policy: ReleasePolicy, batched: bool
) -> _PartResult:
    """One compositor (the part's budget, over the part's frame) and the part's queries, in plan order."""
    dp = _dp()
    budget_key = "rho" if policy.accounting == "zcdp" else "epsilon"
    key_cols = ["customer_id", "dimension", "group_value"] if batched else ["dimension", "group_value"]
    margin_by = [] if part == "people" else [CELL]
    # A compositor without a fixed split is a privacy filter over its part's budget: each
    # query asks for its planned share, and the filter refuses anything beyond the total.
    context = dp.Context.compositor(
        data=coded.data.lazy(),
        privacy_unit=dp.unit_of(contributions=1, identifier=pl.col("employee")),
        privacy_loss=dp.loss_of(**{budget_key: sum(s.budget for s in specs)}),
        margins=[dp.polars.Margin(by=margin_by, max_length=MAX_LENGTH)],
    )
    result = _PartResult(float(context.d_out), [], [], [])
    for spec in specs:
        # every customer's cells of this query (built from each customer's own keys by _code)
        dims = [spec.dimension] if spec.dimension is not None else spec.keys["dimension"].unique().to_list()
        public_cells = coded.cells.filter(pl.col("dimension").is_in(dims)).select(CELL)
        if public_cells.height == 0:
            continue  # a breakdown without public keys: nothing to release, its share is not spent
        base = context.query(**{budget_key: spec.budget})
        if spec.part == "people":
            group = spec.dimension
            columns = [a.column for a in spec.aggregates if a.column is not None]
            truncated = compat.one_row_per_identifier(base, "employee", group, columns)
        else:
            group = CELL
            truncated = compat.truncate_cells(base, "employee", CELL, spec.groups)
        exprs = [
            dp.len(signed=True, scale=a.scale).alias(a.name) if a.column is None
            else pl.col(a.column).dp.sum((0, a.bound), scale=a.scale).alias(a.name)
            for a in spec.aggregates
        ]  # fmt: skip
        query = truncated.group_by(group).agg(*exprs).with_keys(public_cells.rename({CELL: group}))
        measurement, inner = compat.resolve_fixed(query, dp)
        opendp_loss = float(measurement.map(inner._d_in))
        expected = spec.expected_loss(policy.accounting)
        if abs(opendp_loss - expected) > MAP_TOLERANCE * expected:
            raise AccountingMismatch(
                f"OpenDP accounts {opendp_loss!r} for the {spec.part} query ({spec.dimension or 'services/topics'}) "
                f"but the hand-computed loss is {expected!r}: a sensitivity differs from its bound; nothing was released"
            )
        summary, summary_half = _summaries(measurement, spec, policy)
        out = compat.release(inner, measurement)  # noise drawn here, once
        result.losses.append(opendp_loss)
        result.summaries.append(summary)
        acc = dict(zip(summary["column"], summary["accuracy"]))
        acc_half = dict(zip(summary_half["column"], summary_half["accuracy"]))
        names = [a.name for a in spec.aggregates]
        stats = pl.LazyFrame(
            {
                "aggregate": names,
                "scale": [a.scale for a in spec.aggregates],
                "sd": [a.scale if policy.accounting == "zcdp" else math.sqrt(2.0) * a.scale for a in spec.aggregates],
                "acc": [float(acc[n]) for n in names],
                "acc_half": [float(acc_half[n]) for n in names],
            }
        )
        result.pieces.append(
            out.lazy()
            .select(pl.col(group).alias(CELL), *[pl.col(n).cast(pl.Float64) for n in names])
            .unpivot(index=CELL, on=names, variable_name="aggregate", value_name="value")
            .join(coded.cells.lazy(), on=CELL)
            .join(stats, on="aggregate")
            .select(*key_cols[:-2], pl.lit(spec.part).alias("part"), "dimension", "group_value", "aggregate", "value",
                    "scale", "sd", "acc", "acc_half")
        )
    return result


# Query plan signature -> OpenDP's summaries (scales, accuracies) at alpha and alpha/2.
# A summary is a data-free function of the measurement's noise mechanisms and their scales,
# which are fixed by the plan (every aggregate carries its explicit hand-computed scale), so it
# is computed by OpenDP, and its scales checked against ours, once per plan and process. The
# privacy-map assertion (OpenDP's loss for one employee = ours) still runs on every release.
_SUMMARIES: dict[tuple, tuple[pl.DataFrame, pl.DataFrame]] = {}


def _summaries(measurement: Any, spec: QuerySpec, policy: ReleasePolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    from opendp.accuracy import summarize_polars_measurement

    key = (spec.part, spec.dimension, spec.groups, spec.accounted_groups, spec.aggregates, policy.accounting, policy.alpha)
    cached = _SUMMARIES.get(key)
    if cached is None:
        summary = summarize_polars_measurement(measurement, policy.alpha)
        _check_scales(summary, spec)
        cached = (summary, summarize_polars_measurement(measurement, policy.alpha / 2))
        if len(_SUMMARIES) > 256:  # a handful of policies per process; never grows unbounded
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
