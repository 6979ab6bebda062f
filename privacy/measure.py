"""OpenDP measurements of one release: the only module that imports OpenDP (lazily).

Privacy unit: one employee (identifier column ``employee``), across all time. The frame
measured is the per-employee reduction (:mod:`privacy.reduce`); OpenDP re-enforces its bounds
by truncation: at most one row per (employee, cell) and at most ``G`` cells per employee and
query (``G`` = 4 for total/department/site/role; ``max_services_per_period +
max_topics_per_period`` for the one query that counts engaged people per service and per topic). Every aggregate's noise scale is computed here from the
policy and the bounds alone (data-free), passed to OpenDP explicitly, and OpenDP's own privacy
map of every query is asserted to equal that hand-computed loss (defence against upstream
under-accounting such as opendp#2945). One compositor per release holds exactly the release
cost of :func:`privacy.budget.release_cost`.

Noise (zCDP, default): discrete Gaussian with σᵢ = bᵢ·√(L₀ / (2ρᵢ)); pure DP: discrete Laplace
with scale bᵢ·L₀/εᵢ; ``bᵢ`` is the per-employee bound of aggregate i, ``L₀`` the number of
cells OpenDP accounts per employee (see :func:`privacy._opendp_compat.accounted_groups`) and
ρᵢ (εᵢ) its weight share of the release budget.

Only OpenDP's ``contrib`` feature is enabled (the Polars API needs it); never
``floating-point`` or ``honest-but-curious``. All aggregates are integer, so no float
arithmetic is involved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import polars as pl

from privacy import _opendp_compat as compat
from privacy.policy import ReleasePolicy
from privacy.reduce import Bounds

BY: list[str] = ["dimension", "group_value"]
CELL: list[str] = ["cell"]  # integer id of a public key (dimension, group_value) inside OpenDP
PEOPLE_GROUPS = 4  # total, department, site, role: one cell each per employee
# Public upper bound on rows per cell (contract: headcount ≤ 10 million). OpenDP needs it only
# to rule out integer overflow; sensitivities come from truncation (checked by the map assertion).
MAX_LENGTH = 10_000_000
# Narrow integer types for the measured columns: OpenDP serialises the whole frame into each
# query, so bytes cost time. Each type holds MAX_LENGTH × the column's per-row bound, so OpenDP's
# overflow check still passes (contacts up to 100 × 3 months and
# satisfaction up to 500 per row need 64 bits).
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
    budget: float  # ρᵢ (zCDP) or εᵢ (pure)
    scale: float  # σᵢ (Gaussian) or Laplace scale


@dataclass(frozen=True)
class QuerySpec:
    """One OpenDP query: the rows of ``part``, ``groups`` cells per employee, public ``keys``."""

    part: str
    groups: int
    accounted_groups: int
    aggregates: tuple[AggregateSpec, ...]
    keys: pl.DataFrame

    @property
    def budget(self) -> float:
        return sum(a.budget for a in self.aggregates)

    def expected_loss(self, accounting: str) -> float:
        """Loss of the query from first principles, with the scales actually used."""
        if accounting == "zcdp":
            return sum(a.bound**2 * self.accounted_groups / (2 * a.scale**2) for a in self.aggregates)
        return sum(a.bound * self.accounted_groups / a.scale for a in self.aggregates)


# aggregate key -> (table, part, output name, column, bound attribute of Bounds or None for 1).
# Services and topics share one 'usage' count query (one truncation, one off-by-one penalty).
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
    the aggregates of the included ``tables``.
    """
    from privacy.structure import usage_keys

    included = [k for k, lay in AGGREGATE_LAYOUT.items() if lay[0] in tables]
    weight_sum = sum(policy.weights[k] for k in included)
    usage_dims = [d for d, t in (("service", "services"), ("topic", "topics")) if t in tables]
    groups = {
        "people": PEOPLE_GROUPS,
        "usage": (bounds.services if "service" in usage_dims else 0) + (bounds.topics if "topic" in usage_dims else 0),
    }
    keys = {"people": people_keys}
    if usage_dims:
        keys["usage"] = pl.concat([usage_keys(d) for d in usage_dims])
    specs: list[QuerySpec] = []
    for part in ("people", "usage"):
        members = [k for k in included if AGGREGATE_LAYOUT[k][1] == part]
        if not members:
            continue
        acc_groups = compat.accounted_groups(groups[part], keys[part].height)
        by_name: dict[str, list[str]] = {}
        for key in members:
            by_name.setdefault(AGGREGATE_LAYOUT[key][2], []).append(key)
        aggs = []
        for name, agg_keys in by_name.items():
            _, _, _, column, bound_attr = AGGREGATE_LAYOUT[agg_keys[0]]
            bound = 1 if bound_attr is None else int(getattr(bounds, bound_attr))
            budget = total_budget * sum(policy.weights[k] for k in agg_keys) / weight_sum
            scale = noise_scale(bound, acc_groups, budget, policy.accounting)
            aggs.append(AggregateSpec("+".join(agg_keys), name, column, bound, budget, scale))
        specs.append(QuerySpec(part, groups[part], acc_groups, tuple(aggs), keys[part]))
    return specs


@dataclass(frozen=True)
class Measured:
    """Noisy outputs of one release, long: part, dimension, group_value, aggregate, value, scale, sd, acc, acc_half.

    ``sd`` is the standard deviation of the noise (σ for Gaussian, √2·scale for Laplace).

    ``acc`` is OpenDP's accuracy at ``alpha`` and ``acc_half`` at ``alpha/2`` (for ratio intervals).
    ``compositor_loss`` is the total loss the compositor was built with; ``query_losses`` OpenDP's
    privacy map of each query.
    """

    noisy: pl.DataFrame
    compositor_loss: float
    query_losses: tuple[float, ...]
    summaries: tuple[pl.DataFrame, ...]


@lru_cache(maxsize=1)
def _dp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def measure(frame: pl.DataFrame, specs: list[QuerySpec], policy: ReleasePolicy, total_budget: float) -> Measured:
    """Draw the noise of one release, once: one compositor, one OpenDP query per part (people, usage).

    Privacy: the compositor holds ``total_budget`` (ρ under zCDP, ε under pure DP) for the
    employee-level unit; each query's loss (OpenDP's map) must equal the hand-computed one.
    """
    return _measure({None: frame}, {None: specs}, policy, total_budget)


def measure_batch(
    frames: Mapping[str, pl.DataFrame],
    specs: Mapping[str, list[QuerySpec]],
    policy: ReleasePolicy,
    total_budget: float,
) -> Measured:
    """Draw the releases of several customers of one period in one OpenDP measurement, once.

    ``frames`` and ``specs`` are keyed by customer (each as for :func:`measure`); ``noisy``
    gets a leading ``customer_id`` column. The identifier is (customer, employee): every
    customer's employees are relabelled to integer ids disjoint from the other customers', and
    every public key becomes a cell of its own customer, so one person's rows touch only their
    own customer's cells (at most ``G`` of them, enforced again by OpenDP's truncation). The
    cells of one customer are therefore a function of that customer's data alone (parallel
    composition), and OpenDP's privacy map for one identifier (``d_in = 1``), asserted equal to
    the single-release loss, is exactly what each customer's ledger is charged:
    ``total_budget`` = ``release_cost(policy, period)``.

    Refused (``ValueError``) unless every customer has the same queries with the same noise
    scales, and each query's accounted cells are ``G + 1`` (OpenDP caps them at the number of
    keys of the whole batch, so a customer with fewer keys than that must be drawn on its own).
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
            if spec.accounted_groups != compat.truncate_groups_arg(spec.groups):
                raise ValueError(
                    f"customer {customer!r} has only {spec.keys.height} public keys in its {spec.part} query "
                    f"(fewer than the {compat.truncate_groups_arg(spec.groups)} cells OpenDP would account in a batch); "
                    "draw it on its own"
                )
    return _measure(dict(frames), dict(specs), policy, total_budget)


def _plan_signature(specs: list[QuerySpec]) -> tuple:
    return tuple((s.part, s.groups, s.accounted_groups, s.aggregates) for s in specs)


def _measure(
    frames: dict[str | None, pl.DataFrame],
    specs_by: dict[str | None, list[QuerySpec]],
    policy: ReleasePolicy,
    total_budget: float,
) -> Measured:
    """One compositor over the frames of one or more customers (key ``None``: a single release)."""
    dp = _dp()
    batched = None not in frames
    key_cols = ["customer_id", "dimension", "group_value"] if batched else BY
    specs = specs_by[next(iter(specs_by))]  # the same queries and scales for every customer (checked)
    parts = {s.part: i for i, s in enumerate(specs)}
    # Identifiers are only used to group an employee's rows, so a bijective relabelling does not
    # change the output distribution; 32-bit ids make OpenDP's (de)serialisation of the frame cheaper.
    # In a batch each customer's employees get their own id range: the identifier is (customer,
    # employee). Likewise each public key ((customer,) dimension, group_value) becomes one integer
    # cell id (a public bijection applied before OpenDP, never after truncation: opendp#2949).
    cells_by: dict[str | None, pl.DataFrame] = {}
    coded: list[pl.DataFrame] = []
    next_cell = next_employee = 0
    for customer, frame in frames.items():
        compat.assert_no_nulls(frame, ["employee", "part", "dimension", "group_value", *NARROW_TYPES])
        keys = pl.concat([s.keys.select("dimension", "group_value") for s in specs_by[customer]]).unique(maintain_order=True)
        cells = keys.select(
            pl.int_range(next_cell, next_cell + keys.height, dtype=pl.UInt32).alias("cell"), "dimension", "group_value"
        )
        next_cell += keys.height
        if batched:
            cells = cells.insert_column(1, pl.lit(customer, pl.String).alias("customer_id"))
        cells_by[customer] = cells
        f = frame.join(cells.select("cell", "dimension", "group_value"), on=["dimension", "group_value"], how="inner").select(
            (pl.col("employee").rank("dense").cast(pl.UInt32) + next_employee).alias("employee"),
            pl.col("part").replace_strict(parts, default=len(parts), return_dtype=pl.UInt32),
            "cell",
            *[pl.col(c).cast(t) for c, t in NARROW_TYPES.items()],
        )
        next_employee += int(frame["employee"].n_unique())
        coded.append(f)
    all_cells = pl.concat(list(cells_by.values()))
    data = pl.concat(coded) if len(coded) > 1 else coded[0]
    loss = dp.loss_of(rho=total_budget) if policy.accounting == "zcdp" else dp.loss_of(epsilon=total_budget)
    # A compositor without a fixed split is a privacy filter over the whole release budget: each
    # query asks for its planned share, and the filter refuses anything beyond the total.
    # (split_by_weights would add a ~60-step search for the same result.)
    ctx = dp.Context.compositor(
        data=data.lazy(),
        privacy_unit=dp.unit_of(contributions=1, identifier=pl.col("employee")),
        privacy_loss=loss,
        margins=[dp.polars.Margin(by=CELL, max_length=MAX_LENGTH)],
    )
    del data, coded
    compositor_loss = float(ctx.d_out)
    pieces: list[pl.LazyFrame] = []
    losses: list[float] = []
    summaries: list[pl.DataFrame] = []
    for i, spec in enumerate(specs):
        exprs = []
        for a in spec.aggregates:
            if a.column is None:
                exprs.append(dp.len(signed=True, scale=a.scale).alias(a.name))
            else:
                exprs.append(pl.col(a.column).dp.sum((0, a.bound), scale=a.scale).alias(a.name))
        public_cells = pl.concat(
            [plan[i].keys.join(cells_by[c], on=["dimension", "group_value"]).select(CELL) for c, plan in specs_by.items()]
        )
        query = (
            compat.truncate_cells(
                ctx.query(**{"rho" if policy.accounting == "zcdp" else "epsilon": spec.budget}).filter(
                    pl.col("part") == parts[spec.part]
                ),
                "employee",
                CELL[0],
                spec.groups,
                [a.column for a in spec.aggregates if a.column is not None],
            )
            .group_by(*CELL)
            .agg(*exprs)
            .with_keys(public_cells)
        )
        measurement, inner = compat.resolve_fixed(query, dp)
        opendp_loss = float(measurement.map(inner._d_in))
        expected = spec.expected_loss(policy.accounting)
        if abs(opendp_loss - expected) > MAP_TOLERANCE * expected:
            raise AccountingMismatch(
                f"OpenDP accounts {opendp_loss!r} for the {spec.part} query but the hand-computed loss is "
                f"{expected!r}: a sensitivity differs from its bound; nothing was released"
            )
        summary, summary_half = _summaries(measurement, spec, policy)
        out = compat.release(inner, measurement)  # noise drawn here, once
        losses.append(opendp_loss)
        summaries.append(summary)
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
        pieces.append(
            out.lazy()
            .select(*CELL, *[pl.col(n).cast(pl.Float64) for n in names])
            .unpivot(index=CELL, on=names, variable_name="aggregate", value_name="value")
            .join(all_cells.lazy(), on=CELL)
            .join(stats, on="aggregate")
            .select(*key_cols[:-2], pl.lit(spec.part).alias("part"), "dimension", "group_value", "aggregate", "value",
                    "scale", "sd", "acc", "acc_half")
        )
    noisy = pl.concat(pieces).collect() if pieces else pl.DataFrame()
    return Measured(noisy, compositor_loss, tuple(losses), tuple(summaries))


# Query plan signature -> OpenDP's summaries (scales, accuracies) at alpha and alpha/2.
# A summary is a data-free function of the measurement's noise mechanisms and their scales,
# which are fixed by the plan (every aggregate carries its explicit hand-computed scale), so it
# is computed by OpenDP, and its scales checked against ours, once per plan and process. The
# privacy-map assertion (OpenDP's loss for one employee = ours) still runs on every release.
_SUMMARIES: dict[tuple, tuple[pl.DataFrame, pl.DataFrame]] = {}


def _summaries(measurement: Any, spec: QuerySpec, policy: ReleasePolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    from opendp.accuracy import summarize_polars_measurement

    key = (spec.part, spec.groups, spec.accounted_groups, spec.aggregates, policy.accounting, policy.alpha)
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
