"""The data-free plan of one release: which figures are measured, with what budget and noise.

Privacy reason: everything here is a function of the policy, the period and the customer's
*public* structure (its headcount file after roll-up) — never of usage data. So the plan, the
noise scales and the decision to leave out a breakdown reveal nothing about any employee, and
the plan's total loss is exactly the release cost charged to the ledger.

**Allocation.** A release's budget (:meth:`~privacy.policy.ReleasePolicy.release_budget`) is
split over its tables by the policy's ``table_shares``; inside a people table (engagement,
wellbeing) over its aggregates by the fixed weights of :data:`AGGREGATES`, and over the
breakdown levels (total, department, site, role) by the policy's ``breakdown_weights``, which
favour the organisation's headline figures. Each level of a people table is one OpenDP query in
which every employee falls in exactly one cell (L₀ = 1), so the levels compose sequentially.

**Informative breakdowns only.** A breakdown is measured only if at least two of its public
groups can be shown at that budget: judged from the public headcounts, the noise scale and the
policy's public ``assumptions`` (how many of a group's staff typically use the service), a group
counts if its expected count clears the publication threshold (k + z·sd) and, for wellbeing, if
its WHO-5 mean or low-wellbeing share is expected to be narrower than ``max_interval_width``. A
breakdown with fewer than two public groups duplicates the total. A left-out breakdown's share
goes to the rest of its table (the loop repeats until no more breakdowns drop), and the
allocation table says why (:attr:`ReleasePlan.allocations`).

**Complete partitions.** Each measured breakdown also measures one *remainder* cell: the
people whose home has no public key (a rolled-up group still below k). It is never published;
with it the cells of every breakdown add up to the organisation, which the consistency step
(:mod:`privacy.consistency`) uses. It costs nothing: each employee is still in one cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from privacy import _opendp_compat as compat
from privacy.budget import Budget
from privacy.intervals import ratio_halfwidth, z_value
from privacy.periods import Period, parse_period
from privacy.policy import LEVELS, ReleasePolicy
from privacy.reduce import WHO5_C_BOUND, Bounds
from privacy.structure import BREAKDOWNS, PublicStructure, usage_keys

__all__ = [
    "AGGREGATES",
    "PEOPLE_DIMENSIONS",
    "REMAINDER",
    "ALLOCATION_SCHEMA",
    "TYPICAL",
    "AggregateDef",
    "AggregateSpec",
    "QuerySpec",
    "ReleasePlan",
    "plan_release",
]

PEOPLE_DIMENSIONS: tuple[str, ...] = ("total", *BREAKDOWNS)  # one people query each, L₀ = 1
# The cell of a breakdown that holds people whose home has no public key: measured (so the
# breakdown's cells add up to the total), never published. In the roll-up namespace ("[").
REMAINDER = "[Remainder]"


@dataclass(frozen=True)
class AggregateDef:
    """One noisy aggregate: its table, part (frame), measured column (None = count) and weight in the table."""

    name: str
    table: str
    part: str
    column: str | None
    weight: float


# Weights inside a table (documented in docs/privacy-model.md §4). Engagement: the engaged count
# drives uptake and every suppression decision. Wellbeing: counts get less than the centred sums
# and ±1 sums they divide, since a centred estimate barely depends on its count's noise; the
# improved share, whose group (two scores in a quarter) is the smallest, gets the largest weight.
AGGREGATES: tuple[AggregateDef, ...] = (
    AggregateDef("engaged", "engagement", "people", None, 0.75),
    AggregateDef("contacts", "engagement", "people", "contacts", 0.25),
    AggregateDef("who5_n", "wellbeing", "people", "has_who5", 0.11),
    AggregateDef("who5_csum", "wellbeing", "people", "who5_c", 0.15),
    AggregateDef("low_diff", "wellbeing", "people", "low_pm", 0.15),
    AggregateDef("chg_n", "wellbeing", "people", "has_chg", 0.10),
    AggregateDef("improved_diff", "wellbeing", "people", "imp_pm", 0.24),
    AggregateDef("sat_n", "wellbeing", "people", "has_sat", 0.10),
    AggregateDef("sat_csum", "wellbeing", "people", "sat_c", 0.15),
    AggregateDef("engaged", "services", "usage", None, 1.0),
    AggregateDef("engaged", "topics", "usage", None, 1.0),
)
# Typical values in a population that uses a wellbeing service (public, from the literature and
# provider reports; not from any customer's data): previews and plans compute expected interval
# widths there, since a ratio's width depends a little on how far it lies from its midpoint.
TYPICAL: dict[str, float] = {
    "who5_mean": 47.0,
    "wellbeing_low_share": 0.6,
    "wellbeing_improved_share": 0.3,
    "satisfaction_mean": 4.1,
}

PEOPLE_TABLES: tuple[str, ...] = ("engagement", "wellbeing")
# One row per (figure set, level) of a release: measured or not, its share of the release budget, why not.
ALLOCATION_SCHEMA: dict[str, pl.DataType] = {
    "figure_set": pl.String(),  # engagement | wellbeing | services | topics
    "dimension": pl.String(),  # total | department | site | role | service | topic
    "measured": pl.Boolean(),
    "share": pl.Float64(),
    "reason": pl.String(),  # empty when measured
}


@dataclass(frozen=True)
class AggregateSpec:
    """One noisy aggregate of one query: output name, column (None = count), clip bounds, budget and scale."""

    name: str
    column: str | None
    lower: int
    upper: int
    budget: Budget
    scale: float

    @property
    def bound(self) -> int:
        """Per-person, per-cell sensitivity: the larger magnitude of the clip bounds."""
        return max(abs(self.lower), abs(self.upper))

    @property
    def sd(self) -> float:
        return self.budget.noise_sd(self.scale)

    def signature(self) -> tuple:
        return (self.name, self.column, self.lower, self.upper, type(self.budget).__name__, self.scale)


@dataclass(frozen=True)
class QuerySpec:
    """One OpenDP query: one breakdown level of the people frame, or the usage frame.

    ``dimension`` is the people query's level (None for usage); ``groups`` the cells one
    employee keeps; ``accounted_groups`` the cells OpenDP accounts per employee (``L₀``);
    ``keys`` the public keys (dimension, group_value), with the remainder cell for a breakdown.
    """

    part: str
    dimension: str | None
    groups: int
    accounted_groups: int
    aggregates: tuple[AggregateSpec, ...]
    keys: pl.DataFrame = field(compare=False)

    @property
    def budget(self) -> Budget:
        first = self.aggregates[0].budget
        return type(first)(sum(a.budget.value for a in self.aggregates))

    @property
    def batchable(self) -> bool:
        """Same accounting when measured in a batch of customers (whose keys add up)?

        A query accounts min(groups, keys) cells per employee, which in a batch is ``groups``:
        equal to a single draw's iff the customer has at least ``groups`` keys (always true of a
        people query, whose ``groups`` is 1).
        """
        return self.accounted_groups == self.groups

    def expected_loss(self) -> float:
        """Loss of the query from first principles, with the scales actually used (in its accounting)."""
        return sum(a.budget.loss(a.bound, self.accounted_groups, a.scale) for a in self.aggregates)

    def signature(self) -> tuple:
        return (self.part, self.dimension, self.groups, self.accounted_groups,
                tuple(a.signature() for a in self.aggregates))  # fmt: skip


@dataclass(frozen=True)
class ReleasePlan:
    """The public plan of one customer-period release.

    ``allocations``: one row per (table, dimension): ``measured``, ``share`` (of the release
    budget), ``reason`` (why a breakdown is left out, empty when measured).
    """

    period: Period
    budget: Budget
    tables: tuple[str, ...]
    bounds: Bounds
    queries: tuple[QuerySpec, ...]
    allocations: pl.DataFrame = field(compare=False)

    def signature(self) -> tuple:
        """Queries and noise scales: releases with equal signatures can be measured in one batch."""
        return tuple(q.signature() for q in self.queries)

    def aggregate(self, part: str, dimension: str | None, name: str) -> AggregateSpec | None:
        for q in self.queries:
            if q.part == part and q.dimension == dimension:
                return next((a for a in q.aggregates if a.name == name), None)
        return None


def _level_weights(policy: ReleasePolicy, levels: list[str]) -> dict[str, float]:
    total = sum(policy.breakdown_weights[lv] for lv in levels)
    return {lv: policy.breakdown_weights[lv] / total for lv in levels}


def _people_specs(
    policy: ReleasePolicy, table: str, budget: Budget, levels: list[str], bounds: Bounds
) -> dict[str, list[AggregateSpec]]:
    """Aggregate specs of one people table per measured level (budget: the table's share of the release)."""
    defs = [a for a in AGGREGATES if a.table == table]
    weight_sum = sum(a.weight for a in defs)
    clip = bounds.column_bounds()
    out: dict[str, list[AggregateSpec]] = {}
    for level, share in _level_weights(policy, levels).items():
        specs = []
        for a in defs:
            b = budget.scaled(share * a.weight / weight_sum)
            lower, upper = (0, 1) if a.column is None else clip[a.column]
            specs.append(
                AggregateSpec(a.name, a.column, lower, upper, b, b.noise_scale(max(abs(lower), abs(upper)), 1))
            )
        out[level] = specs
    return out


def _groups(structure: PublicStructure, level: str) -> list[int]:
    hc = structure.public_headcount.filter(pl.col("dimension") == level)
    return [int(x) for x in hc["headcount"].to_list()]


def _reachable(policy: ReleasePolicy, table: str, granularity: str, headcount: int, specs: list[AggregateSpec]) -> bool:
    """Whether a group of this public headcount is expected to be shown (public assumptions only)."""
    by = {a.name: a for a in specs}
    uptake = policy.assumptions["monthly_uptake" if granularity == "month" else "quarterly_uptake"]
    if table == "engagement":
        engaged = by["engaged"]
        return uptake * headcount >= policy.k + policy.z * engaged.sd
    n = uptake * policy.assumptions["scored_share"] * headcount
    count = by["who5_n"]
    if n < policy.k_scores + policy.z * count.sd:
        return False
    z = z_value(policy.alpha)
    mean_hw = ratio_halfwidth(n, count.sd, by["who5_csum"].sd, z, WHO5_C_BOUND, TYPICAL["who5_mean"] - 50.0)
    share_hw = ratio_halfwidth(n, count.sd, by["low_diff"].sd / 2, z, 0.5, TYPICAL["wellbeing_low_share"] - 0.5)
    return (2 * mean_hw <= policy.max_interval_width["who5_mean"]
            or 2 * share_hw <= policy.max_interval_width["wellbeing_low_share"])  # fmt: skip


def _choose_levels(
    policy: ReleasePolicy, table: str, granularity: str, budget: Budget, structure: PublicStructure, bounds: Bounds
) -> tuple[list[str], dict[str, str]]:
    """The measured levels of one people table and the reason for each level left out."""
    reasons: dict[str, str] = {}
    levels = ["total"]
    for level in BREAKDOWNS:
        n_groups = len(_groups(structure, level))
        if policy.breakdown_weights[level] <= 0:
            reasons[level] = "not measured: its weight in the policy is 0"
        elif n_groups < 2:
            reasons[level] = (f"not measured: the public headcount has {n_groups} {level} group(s) of at least "
                              f"k = {policy.k} people, so it would only repeat the organisation total")  # fmt: skip
        else:
            levels.append(level)
    while True:
        specs = _people_specs(policy, table, budget, levels, bounds)
        dropped = []
        for level in levels[1:]:
            shown = sum(_reachable(policy, table, granularity, hc, specs[level]) for hc in _groups(structure, level))
            if shown < 2:
                dropped.append(level)
                what = "WHO-5 figure narrow enough to be useful" if table == "wellbeing" else "count clearly above k"
                reasons[level] = (
                    f"not measured: at this budget fewer than two {level} groups are expected to reach k = "
                    f"{policy.k if table == 'engagement' else policy.k_scores} people with a {what}; "
                    "its share of the budget went to the other figures"
                )
        if not dropped:
            return levels, reasons
        levels = [lv for lv in levels if lv not in dropped]


def plan_release(policy: ReleasePolicy, period: str, structure: PublicStructure) -> ReleasePlan:
    """The plan of ``structure.customer_id``'s release of ``period`` (public inputs only).

    Its queries' budgets add up exactly to ``policy.release_budget(period)``.
    """
    p = parse_period(period)
    budget = policy.release_budget(p.label)
    tables = policy.release_tables(p.label)
    bounds = Bounds.for_period(policy, p)
    per_level: dict[str, list[AggregateSpec]] = {d: [] for d in PEOPLE_DIMENSIONS}
    rows: list[tuple[str, str, bool, float, str]] = []
    for table in PEOPLE_TABLES:
        if table not in tables:
            continue
        table_budget = budget.scaled(tables[table])
        levels, reasons = _choose_levels(policy, table, p.granularity, table_budget, structure, bounds)
        weights = _level_weights(policy, levels)
        for level, specs in _people_specs(policy, table, table_budget, levels, bounds).items():
            per_level[level].extend(specs)
        for level in LEVELS:
            measured = level in levels
            rows.append((table, level, measured, tables[table] * weights.get(level, 0.0), reasons.get(level, "")))

    queries: list[QuerySpec] = []
    for level in PEOPLE_DIMENSIONS:
        if not per_level[level]:
            continue
        keys = structure.people_keys().filter(pl.col("dimension") == level)
        if level != "total":
            keys = pl.concat([keys, pl.DataFrame({"dimension": [level], "group_value": [REMAINDER]})])
        queries.append(QuerySpec("people", level, 1, 1, tuple(per_level[level]), keys))

    usage_tables = [t for t in ("services", "topics") if t in tables]
    if usage_tables:
        dims = [{"services": "service", "topics": "topic"}[t] for t in usage_tables]
        keys = pl.concat([usage_keys(d) for d in dims])
        groups = (bounds.services if "services" in tables else 0) + (bounds.topics if "topics" in tables else 0)
        # an employee has at most one row per key: keeping more rows than keys keeps nothing more, and
        # truncating at the smaller bound accounts the same cells alone and in a batch (always batchable)
        groups = min(groups, keys.height)
        accounted = compat.accounted_groups(groups, keys.height)
        usage_budget = budget.scaled(sum(tables[t] for t in usage_tables))
        spec = AggregateSpec("engaged", None, 0, 1, usage_budget, usage_budget.noise_scale(1, accounted))
        queries.append(QuerySpec("usage", None, groups, accounted, (spec,), keys))
        for t in usage_tables:
            rows.append((t, {"services": "service", "topics": "topic"}[t], True, tables[t], ""))

    allocations = pl.DataFrame(rows, schema=ALLOCATION_SCHEMA, orient="row")
    return ReleasePlan(p, budget, tuple(tables), bounds, tuple(queries), allocations)


def expected_sd(plan: ReleasePlan, part: str, dimension: str | None, name: str) -> float | None:
    """Noise sd of one planned aggregate (before the consistency step), or None when not measured."""
    spec = plan.aggregate(part, dimension, name)
    return None if spec is None else spec.sd


def threshold(policy: ReleasePolicy, sd: float, *, scores: bool = False) -> float:
    """The publication threshold of a noisy count with noise ``sd``: k + z·sd (k_scores for a score count)."""
    return (policy.k_scores if scores else policy.k) + policy.z * sd


def halfwidth_z(policy: ReleasePolicy) -> float:
    return z_value(policy.alpha)
