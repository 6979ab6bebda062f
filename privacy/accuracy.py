"""Data-free accuracy and suppression previews for a candidate policy (the what-if tuner).

Privacy reason: these functions see the policy, the noise scales it implies and public
headcounts only; never events. A privacy officer can therefore explore policies freely
without spending budget or touching personal data. They do not import OpenDP.

The noise scales are those :mod:`privacy.measure` passes to OpenDP (same planning code).
Half-widths use the continuous approximation of the discrete noise: z₁₋α/₂·σ for the
Gaussian (zCDP) and scale·ln(1/α) for the Laplace (pure DP); OpenDP's own accuracy of a
real release rounds these up to whole people.

>>> from privacy.policy import DEFAULT_POLICY
>>> hw = expected_interval_halfwidths(DEFAULT_POLICY)
>>> round(hw.filter(metric="engaged_employees", dimension="breakdowns")["halfwidth"][0], 1)
10.1
"""

from __future__ import annotations

import math
from datetime import date
from statistics import NormalDist

import polars as pl

from privacy.budget import release_cost
from privacy.contract import SERVICES, TOPICS
from privacy.periods import parse_period
from privacy.policy import ReleasePolicy
from privacy.reduce import SAT_SCALE, WHO5_BOUND, Bounds
from privacy.structure import build_structure

REPRESENTATIVE = {"month": "2025-01", "quarter": "2025-Q1"}
_STD = NormalDist()


def _scales(policy: ReleasePolicy) -> dict[tuple[str, str], tuple[str, float, float, Bounds]]:
    """(part, aggregate) -> (granularity, scale, sd, bounds) for every table of the policy."""
    from privacy.measure import plan_queries  # OpenDP itself is imported only when measuring

    out = {}
    for gran, label in REPRESENTATIVE.items():
        tables = policy.tables_for(gran)
        if not tables:
            continue
        cost = release_cost(policy, label)
        bounds = Bounds.for_period(policy, parse_period(label))
        budget = cost.rho if policy.accounting == "zcdp" else cost.epsilon
        # a typical organisation has more public keys than cells per employee (the cap never binds)
        keys = pl.DataFrame({"dimension": ["department"] * 16, "group_value": [str(i) for i in range(16)]})
        for spec in plan_queries(policy, tables, bounds, keys, budget):
            for a in spec.aggregates:
                sd = a.scale if policy.accounting == "zcdp" else math.sqrt(2) * a.scale
                out[(spec.part, a.name)] = (gran, a.scale, sd, bounds)
                if spec.part == "usage":
                    for t in ("services", "topics"):
                        if t in tables:
                            out[(spec.part, a.name, t)] = (gran, a.scale, sd, bounds)
    return out


def _halfwidth(policy: ReleasePolicy, scale: float, alpha: float) -> float:
    if policy.accounting == "zcdp":
        return _STD.inv_cdf(1 - alpha / 2) * scale
    return scale * math.log(1 / alpha)


def _ratio_halfwidth(s: float, a_s: float, n: float, a_n: float, lo: float, hi: float) -> float:
    low = max(lo, (s - a_s) / (n + a_n))
    high = min(hi, (s + a_s) / (n - a_n)) if n - a_n > 0 else hi
    return (high - low) / 2


def expected_interval_halfwidths(policy: ReleasePolicy, assumed_scorers: int = 50) -> pl.DataFrame:
    """Expected half-width of the 1 − alpha interval of each metric, from the noise scale alone.

    Counts are in people, contacts in contacts, uptake in people (divide by a group's public
    headcount for the rate). Means assume ``assumed_scorers`` people with a score in the cell and
    a true mean at mid-scale (WHO-5 50, satisfaction 3); their interval is the conservative ratio
    interval used in releases. Columns: table, metric, dimension ('breakdowns' = total,
    department, site, role; or 'service'/'topic'), granularity, sd, halfwidth, unit, assumption.
    """
    if assumed_scorers < 1:
        raise ValueError("assumed_scorers must be at least 1")
    sc = _scales(policy)
    a = policy.alpha
    rows = []

    def add(table, metric, dim, key, unit, hw=None, assumption=""):
        if key not in sc:
            return
        gran, scale, sd, _ = sc[key]
        rows.append((table, metric, dim, gran, sd, hw if hw is not None else _halfwidth(policy, scale, a), unit, assumption))

    add("engagement", "engaged_employees", "breakdowns", ("people", "engaged"), "people")
    add("engagement", "contacts", "breakdowns", ("people", "contacts"), "contacts")
    add("engagement", "uptake_rate", "breakdowns", ("people", "engaged"), "people / headcount",
        assumption="divide by the group's public headcount")
    n = float(assumed_scorers)
    for metric, s_key, n_key, mid, lo, hi, div in (
        ("who5_mean", "who5_sum", "who5_n", WHO5_BOUND / 2, 0.0, float(WHO5_BOUND), 1.0),
        ("satisfaction_mean", "satisfaction_sum", "satisfaction_n", 3.0, 1.0, 5.0, float(SAT_SCALE)),
    ):
        if ("people", s_key) in sc and ("people", n_key) in sc:
            a_s = _halfwidth(policy, sc[("people", s_key)][1], a / 2) / div
            a_n = _halfwidth(policy, sc[("people", n_key)][1], a / 2)
            hw = _ratio_halfwidth(mid * n, a_s, n, a_n, lo, hi)
            add("wellbeing", metric, "breakdowns", ("people", n_key), "scale points", hw,
                f"{assumed_scorers} people with a score, mean at mid-scale")
    if policy.granularity["services"] == policy.granularity["topics"]:
        add("services", "engaged_employees", "service", ("usage", "engaged"), "people")
        add("topics", "engaged_employees", "topic", ("usage", "engaged"), "people")
    else:  # released at different granularities: each is the only usage table of its release
        add("services", "engaged_employees", "service", ("usage", "engaged", "services"), "people")
        add("topics", "engaged_employees", "topic", ("usage", "engaged", "topics"), "people")
    return pl.DataFrame(
        rows,
        schema=["table", "metric", "dimension", "granularity", "sd", "halfwidth", "unit", "assumption"],
        orient="row",
    )


def _p_below(policy: ReleasePolicy, mean: float, threshold: float, scale: float) -> float:
    """P(noisy < threshold) for a true value ``mean``."""
    if policy.accounting == "zcdp":
        return _STD.cdf((threshold - mean) / scale)
    x = threshold - mean
    return 0.5 * math.exp(x / scale) if x < 0 else 1 - 0.5 * math.exp(-x / scale)


def expected_suppression_share(
    policy: ReleasePolicy,
    headcount: pl.DataFrame,
    assumed_uptake: float = 0.15,
    assumed_score_share: float = 0.5,
) -> pl.DataFrame:
    """Per customer: expected share of suppressed cells, from public headcounts and the noise scale only.

    ``headcount``: either the customer's headcount rows (customer_id, site, department, role,
    headcount[, as_of]; the latest as_of is used and rolled up with ``policy.k``) or the
    published ``public_headcount`` (customer_id, dimension, group_value, headcount).
    Assumptions: ``assumed_uptake`` of a group's headcount engage in a period; of those,
    ``assumed_score_share`` give a WHO-5 score / a rating; engaged people spread evenly over
    the services and over the topics. Columns: customer_id, cells, expected_suppressed,
    expected_share.
    """
    if not (0 <= assumed_uptake <= 1 and 0 <= assumed_score_share <= 1):
        raise ValueError("assumed_uptake and assumed_score_share must be between 0 and 1")
    public = _public(headcount, policy.k)
    sc = _scales(policy)
    k, ks, z = policy.k, policy.k_scores, policy.z
    rows = []
    for (customer,), groups in public.group_by(["customer_id"], maintain_order=True):
        cells = 0.0
        hidden = 0.0
        total = float(groups.filter(pl.col("dimension") == "total")["headcount"].sum() or 0)
        for hc in groups.filter(pl.col("dimension") != "total")["headcount"].to_list() + [total]:
            mu = assumed_uptake * hc
            p_count = None
            if ("people", "engaged") in sc:
                sd = sc[("people", "engaged")][2]
                p_count = _p_below(policy, mu, k + z * sd, sc[("people", "engaged")][1])
                cells += 3
                hidden += 3 * p_count
            for n_key in ("who5_n", "satisfaction_n"):
                if ("people", n_key) in sc:
                    _, scale, sd, _ = sc[("people", n_key)]
                    p_n = _p_below(policy, assumed_score_share * mu, ks + z * sd, scale)
                    shown = (1 - p_n) * (1 - p_count if p_count is not None else 1)
                    cells += 1
                    hidden += 1 - shown
        for table, values in (("services", SERVICES), ("topics", TOPICS)):
            if ("usage", "engaged", table) in sc:
                _, scale, sd, _ = sc[("usage", "engaged", table)]
                mu = assumed_uptake * total / len(values)
                cells += len(values)
                hidden += len(values) * _p_below(policy, mu, k + z * sd, scale)
        rows.append((customer, int(cells), hidden, hidden / cells if cells else 0.0))
    return pl.DataFrame(
        rows, schema=["customer_id", "cells", "expected_suppressed", "expected_share"], orient="row"
    )


def _public(headcount: pl.DataFrame, k: int) -> pl.DataFrame:
    if "dimension" in headcount.columns:
        return headcount.select("customer_id", "dimension", "group_value", pl.col("headcount").cast(pl.Int64))
    frames = []
    hc = headcount
    if "role" not in hc.columns:
        hc = hc.with_columns(role=pl.lit(None, pl.String))
    if "as_of" in hc.columns:
        hc = hc.filter(pl.col("as_of") == pl.col("as_of").max().over("customer_id"))
    for (customer,), rows in hc.group_by(["customer_id"], maintain_order=True):
        s = build_structure(rows, k, str(customer), date(1970, 1, 1))
        frames.append(s.public_headcount.select("customer_id", "dimension", "group_value", "headcount"))
    if not frames:
        return pl.DataFrame(schema={"customer_id": pl.String, "dimension": pl.String, "group_value": pl.String, "headcount": pl.Int64})
    return pl.concat(frames)
