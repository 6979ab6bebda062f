"""Data-free previews of a policy: the allocation, each figure's expected interval and whether it shows.

Privacy reason: these functions see the policy, the plan it implies (:mod:`privacy.plan`) and
public headcounts only; never events. A privacy officer can explore policies (the what-if
tuner) without spending budget or touching personal data. They do not import OpenDP.

The noise sd of every figure is the plan's, after the consistency step (computed by running
:func:`privacy.consistency.reconcile` on the plan's variances: the same code as a release).
Expected counts come from a group's public headcount and the policy's public ``assumptions``.
Half-widths are those of a figure far from its threshold (z·sd for a count; Fieller's interval
at the metric's typical value, :data:`privacy.plan.TYPICAL`, for a mean or share); a figure
near its threshold has a wider, selection-aware interval, so these are the widths a user sees
for figures that are clearly shown.

>>> from privacy.policy import DEFAULT_POLICY
>>> p = preview(DEFAULT_POLICY, reference_headcount(10_000))
>>> row = p.summary.filter(metric="engaged_employees", dimension="total")
>>> float(row["halfwidth"][0]) < 12
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist

import polars as pl

from privacy.consistency import reconcile
from privacy.estimates import METRIC_BY_NAME, RATIOS
from privacy.intervals import ratio_halfwidth, z_value
from privacy.plan import REMAINDER, TYPICAL, ReleasePlan, plan_release
from privacy.policy import ReleasePolicy
from privacy.structure import PublicStructure, build_structure

__all__ = ["REPRESENTATIVE", "Preview", "preview", "reference_headcount", "FIGURE_TABLES"]

REPRESENTATIVE = {"month": "2025-01", "quarter": "2025-Q1"}
FIGURE_TABLES: dict[str, str] = {
    "engaged_employees": "engagement", "uptake_rate": "engagement", "contacts": "engagement",
    "who5_mean": "wellbeing", "wellbeing_low_share": "wellbeing", "wellbeing_improved_share": "wellbeing",
    "satisfaction_mean": "wellbeing",
}  # fmt: skip
_STD = NormalDist()


@dataclass(frozen=True)
class Preview:
    """What a policy would give one organisation.

    ``allocations``: customer_id, granularity, figure_set, dimension, measured, share, rho, reason.
    ``figures``: one row per figure and public group: customer_id, granularity, metric,
    dimension, group_value, headcount, expected_n, sd, halfwidth, p_shown, expected_status.
    ``summary``: per (metric, dimension): groups, median halfwidth, and the expected shares of
    groups shown / hidden / too uncertain.
    """

    allocations: pl.DataFrame
    figures: pl.DataFrame
    summary: pl.DataFrame


def reference_headcount(employees: int = 2_000, customer_id: str = "reference") -> pl.DataFrame:
    """A typical organisation's headcount rows (site, department, role, headcount) of ``employees`` people.

    Used when no customer is selected: four sites, eight departments of decreasing size (one
    below k, which rolls up) and four roles.
    """
    sites = {"Site A": 0.45, "Site B": 0.30, "Site C": 0.17, "Site D": 0.08}
    departments = {"Operations": 0.42, "Quality": 0.15, "Support": 0.13, "Training": 0.10, "People": 0.08,
                   "Finance": 0.07, "IT": 0.045, "Legal": 0.005}  # fmt: skip
    roles = {"staff": 0.72, "team lead": 0.12, "specialist": 0.10, "manager": 0.06}
    rows = []
    for site, ws in sites.items():
        for dept, wd in departments.items():
            for role, wr in roles.items():
                n = round(employees * ws * wd * wr)
                if n:
                    rows.append((customer_id, site, dept, role, n))
    return pl.DataFrame(rows, schema=["customer_id", "site", "department", "role", "headcount"], orient="row")


def _structures(policy: ReleasePolicy, headcount: pl.DataFrame) -> list[PublicStructure]:
    hc = headcount
    if "as_of" in hc.columns:
        hc = hc.filter(pl.col("as_of") == pl.col("as_of").max().over("customer_id"))
    if "role" not in hc.columns:
        hc = hc.with_columns(role=pl.lit(None, pl.String))
    return [
        build_structure(rows, policy.k, str(customer), date(2025, 1, 1))
        for (customer,), rows in hc.group_by(["customer_id"], maintain_order=True)
    ]


def _planned_noise(plan: ReleasePlan, customer: str) -> pl.DataFrame:
    """The plan's cells with zero values and their noise sd, reconciled: each figure's sd after consistency."""
    rows = []
    for q in plan.queries:
        for g in q.keys.iter_rows(named=True):
            for a in q.aggregates:
                rows.append((customer, q.part, g["dimension"], g["group_value"], a.name, 0.0, a.scale, a.sd))
    noisy = pl.DataFrame(
        rows,
        schema=["customer_id", "part", "dimension", "group_value", "aggregate", "value", "scale", "sd"],
        orient="row",
    )
    return reconcile(noisy).filter(pl.col("group_value") != REMAINDER)


def _p_above(mean: float, threshold: float, sd: float) -> float:
    return 1.0 - _STD.cdf((threshold - mean) / sd) if sd > 0 else float(mean >= threshold)


def preview(policy: ReleasePolicy, headcount: pl.DataFrame) -> Preview:
    """Preview ``policy`` for the organisations in ``headcount`` (their headcount rows: customer_id,
    site, department, role, headcount[, as_of]; the latest ``as_of`` of each is used)."""
    z = z_value(policy.alpha)
    alloc_rows: list[pl.DataFrame] = []
    fig_rows: list[tuple] = []
    for structure in _structures(policy, headcount):
        customer = structure.customer_id
        hc_of = {
            (r["dimension"], r["group_value"]): r["headcount"] for r in structure.public_headcount.iter_rows(named=True)
        }
        for granularity, label in REPRESENTATIVE.items():
            if not policy.tables_for(granularity):
                continue
            plan = plan_release(policy, label, structure)
            alloc_rows.append(plan.allocations.select(
                pl.lit(customer).alias("customer_id"), pl.lit(granularity).alias("granularity"), pl.all(),
                (pl.col("share") * plan.budget.charge.value).alias("rho"),
            ))  # fmt: skip
            noise = _planned_noise(plan, customer)
            uptake = policy.assumptions["monthly_uptake" if granularity == "month" else "quarterly_uptake"]
            sd_of = {
                (r["part"], r["dimension"], r["group_value"], r["aggregate"]): r["sd"]
                for r in noise.iter_rows(named=True)
            }
            for (part, dim, group, agg), sd in sd_of.items():
                hc = float(hc_of.get((dim, group), 0) or 0)
                if part == "usage":
                    continue
                if agg == "engaged":
                    mu = uptake * hc
                    t = policy.k + policy.z * sd
                    p = _p_above(mu, t, sd)
                    for metric, hw in (
                        ("engaged_employees", z * sd),
                        ("uptake_rate", z * sd / hc if hc else math.nan),
                        ("contacts", z * sd_of.get((part, dim, group, "contacts"), math.nan)),
                    ):
                        fig_rows.append((customer, granularity, metric, dim, group, hc, mu, sd, hw, p,
                                         "published" if p >= 0.5 else "hidden"))  # fmt: skip
            for metric, ratio in RATIOS.items():
                for (part, dim, group, agg), n_sd in sd_of.items():
                    if part != "people" or agg != ratio.count:
                        continue
                    hc = float(hc_of.get((dim, group), 0) or 0)
                    share = policy.assumptions["repeat_scored_share" if ratio.count == "chg_n" else
                                               "rated_share" if ratio.count == "sat_n" else "scored_share"]  # fmt: skip
                    n = uptake * share * hc
                    s_sd = sd_of[(part, dim, group, ratio.sum)] / ratio.divisor
                    m = METRIC_BY_NAME[metric]
                    hw = ratio_halfwidth(n, n_sd, s_sd, z, (m.high - m.low) / 2, TYPICAL[metric] - ratio.midpoint)
                    p = _p_above(n, policy.k_scores + policy.z * n_sd, n_sd)
                    status = ("hidden" if p < 0.5 else
                              "too_uncertain" if 2 * hw > policy.max_interval_width[metric] else "published")  # fmt: skip
                    fig_rows.append((customer, granularity, metric, dim, group, hc, n, n_sd, hw, p, status))
    figures = pl.DataFrame(
        fig_rows,
        schema={"customer_id": pl.String, "granularity": pl.String, "metric": pl.String, "dimension": pl.String,
                "group_value": pl.String, "headcount": pl.Float64, "expected_n": pl.Float64, "sd": pl.Float64,
                "halfwidth": pl.Float64, "p_shown": pl.Float64, "expected_status": pl.String},
        orient="row",
    )  # fmt: skip
    summary = figures.group_by("granularity", "metric", "dimension", maintain_order=True).agg(
        groups=pl.len(),
        halfwidth=pl.col("halfwidth").median(),
        shown=(pl.col("expected_status") == "published").mean(),
        hidden=(pl.col("expected_status") == "hidden").mean(),
        too_uncertain=(pl.col("expected_status") == "too_uncertain").mean(),
    )
    allocations = pl.concat(alloc_rows) if alloc_rows else pl.DataFrame()
    return Preview(allocations, figures, summary)
