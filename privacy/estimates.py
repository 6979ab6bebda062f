"""Published figures from the consistent noisy aggregates: values, selection-aware intervals, gates.

Privacy reason: post-processing only. The inputs are OpenDP's noisy outputs after the
consistency step (:mod:`privacy.consistency`), their public noise sd, the public headcount and
the policy; no true count is read. What is *shown* is decided afterwards in DuckDB
(:mod:`privacy.suppression`) from the ``gate`` value and its public threshold computed here.

The figures (:data:`METRICS`):

* ``engaged_employees`` (people who used the service), ``contacts``, ``uptake_rate`` (engaged
  over the group's public headcount). A group's figures are shown when its noisy engaged count
  clears k + z·sd; the count's interval is selection-aware (:func:`~privacy.intervals.truncated_interval`);
  contacts' noise is independent of that decision, so their interval is the plain one.
* ``who5_mean`` (0–100) = 50 + S/N with S the centred sum of the latest scores;
  ``wellbeing_low_share`` = ½ + D/(2N), D = Σ ±1 (latest score below 50);
  ``wellbeing_improved_share`` = ½ + D/(2N₂) over people with two scores (latest ≥ 10 points above
  the first); ``satisfaction_mean`` (1–5) = 3 + S/(100 N). A figure may be shown when its count N
  clears k_scores + z·sd (the gate) and its plain Fieller interval (``screen_width``) is at most
  ``max_interval_width``; its published interval accounts for that selection
  (:func:`~privacy.intervals.selective_ratio_interval`), and if that honest interval is still
  wider than the limit the figure is "too uncertain to show".
* services and topics: ``engaged_employees`` per service / topic (a person counts towards at
  most G of them), shown when the noisy count clears k + z·sd, with a selection-aware interval.

Every value is then held inside its interval and its metric's range
(:func:`~privacy.intervals.project`). ``noise_sd`` is the figure's noise standard deviation: for
a count public and data-independent (the published re-check of thresholds uses it), for a ratio
the delta-method sd at its estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from privacy.intervals import (
    fieller_offset_interval,
    noise_quantile,
    project,
    selective_ratio_interval,
    truncated_interval,
    z_value,
)
from privacy.plan import REMAINDER
from privacy.policy import ReleasePolicy

__all__ = ["Metric", "METRICS", "METRIC_BY_NAME", "RATIOS", "ESTIMATE_SCHEMA", "estimate"]


@dataclass(frozen=True)
class Metric:
    """A published figure: its table, kind and range (values and intervals are kept inside it)."""

    name: str
    table: str
    kind: str  # 'count' | 'rate' | 'ratio'
    low: float
    high: float


METRICS: tuple[Metric, ...] = (
    Metric("engaged_employees", "engagement", "count", 0.0, math.inf),
    Metric("uptake_rate", "engagement", "rate", 0.0, 1.0),
    Metric("contacts", "engagement", "count", 0.0, math.inf),
    Metric("who5_mean", "wellbeing", "ratio", 0.0, 100.0),
    Metric("wellbeing_low_share", "wellbeing", "ratio", 0.0, 1.0),
    Metric("wellbeing_improved_share", "wellbeing", "ratio", 0.0, 1.0),
    Metric("satisfaction_mean", "wellbeing", "ratio", 1.0, 5.0),
)
METRIC_BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


@dataclass(frozen=True)
class Ratio:
    """A mean or share = midpoint + (sum / divisor) / count, from two noisy aggregates."""

    count: str
    sum: str
    midpoint: float
    divisor: float  # sum units per unit of the figure (a ±1 share sum: 2; satisfaction hundredths: 100)


RATIOS: dict[str, Ratio] = {
    "who5_mean": Ratio("who5_n", "who5_csum", 50.0, 1.0),
    "wellbeing_low_share": Ratio("who5_n", "low_diff", 0.5, 2.0),
    "wellbeing_improved_share": Ratio("chg_n", "improved_diff", 0.5, 2.0),
    "satisfaction_mean": Ratio("sat_n", "sat_csum", 3.0, 100.0),
}

ESTIMATE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "dimension": pl.String(),
    "group_value": pl.String(),
    "metric": pl.String(),
    "value": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "noise_sd": pl.Float64(),
    "gate": pl.Float64(),  # the noisy count whose threshold decides whether the figure is shown
    "gate_threshold": pl.Float64(),
    "width_limit": pl.Float64(),  # max_interval_width of a ratio (NULL: no width rule)
    "screen_width": pl.Float64(),  # a ratio's plain (Fieller) interval width: the first width test
    "headcount": pl.Float64(),
}


def _wide(noisy: pl.DataFrame, part: str) -> pl.DataFrame:
    rows = noisy.filter((pl.col("part") == part) & (pl.col("group_value") != REMAINDER))
    if rows.is_empty():
        return pl.DataFrame()
    return rows.pivot(on="aggregate", index=["customer_id", "dimension", "group_value"], values=["value", "sd"],
                      aggregate_function="first")  # fmt: skip


_NUMERIC = tuple(name for name, dtype in ESTIMATE_SCHEMA.items() if dtype == pl.Float64)  # what _frame fills


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).to_numpy() if name in frame.columns else np.full(frame.height, np.nan)


def _frame(keys: pl.DataFrame, metric: str, **columns: np.ndarray | float | None) -> pl.DataFrame:
    data: dict[str, object] = {"metric": [metric] * keys.height}
    for name in _NUMERIC:
        col = columns.get(name)
        data[name] = np.full(keys.height, np.nan) if col is None else np.broadcast_to(col, (keys.height,)).astype(float)
    return keys.hstack(pl.DataFrame(data)).with_columns(pl.col(pl.Float64).fill_nan(None))


def estimate(noisy: pl.DataFrame, public_headcount: pl.DataFrame, policy: ReleasePolicy) -> pl.DataFrame:
    """The release's figures (columns :data:`ESTIMATE_SCHEMA`) from reconciled noisy aggregates.

    ``noisy``: customer_id, part, dimension, group_value, aggregate, value, sd (after
    :func:`privacy.consistency.reconcile`); ``public_headcount``: customer_id, dimension,
    group_value, headcount. Remainder cells are dropped here: they are never published.
    """
    alpha = policy.alpha
    # Pure DP draws Laplace noise: count intervals use its law; ratio intervals use the normal
    # machinery with every sd inflated so that its 1 − α quantile is the Laplace one (conservative).
    laplace = policy.accounting == "pure"
    z_full = noise_quantile(alpha, laplace=laplace)
    inflate = z_full / z_value(alpha)
    out: list[pl.DataFrame] = []
    key_cols = ["customer_id", "dimension", "group_value"]
    hc = public_headcount.select(*key_cols, pl.col("headcount").cast(pl.Float64))

    people = _wide(noisy, "people")
    if not people.is_empty():
        people = people.join(hc, on=key_cols, how="left")
        keys = people.select(key_cols)
        headcount = _col(people, "headcount")
        if "value_engaged" in people.columns:
            x, sd = _col(people, "value_engaged"), _col(people, "sd_engaged")
            t = policy.k + policy.z * sd
            lo, hi = truncated_interval(x, sd, t, alpha, floor=0.0, laplace=laplace)
            v, lo, hi = project(x, lo, hi, 0.0, math.inf)
            out.append(
                _frame(
                    keys,
                    "engaged_employees",
                    value=v,
                    ci_low=lo,
                    ci_high=hi,
                    noise_sd=sd,
                    gate=x,
                    gate_threshold=t,
                    headcount=headcount,
                )
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                per = np.where(headcount > 0, 1.0 / headcount, np.nan)
            rv, rlo, rhi = project(v * per, lo * per, hi * per, 0.0, 1.0)
            out.append(
                _frame(
                    keys,
                    "uptake_rate",
                    value=rv,
                    ci_low=rlo,
                    ci_high=rhi,
                    noise_sd=sd * per,
                    gate=x,
                    gate_threshold=t,
                    headcount=headcount,
                )
            )
            c, c_sd = _col(people, "value_contacts"), _col(people, "sd_contacts")
            cv, clo, chi = project(c, c - z_full * c_sd, c + z_full * c_sd, 0.0, math.inf)
            out.append(
                _frame(
                    keys,
                    "contacts",
                    value=cv,
                    ci_low=clo,
                    ci_high=chi,
                    noise_sd=c_sd,
                    gate=x,
                    gate_threshold=t,
                    headcount=headcount,
                )
            )
        for name, ratio in RATIOS.items():
            if f"value_{ratio.count}" not in people.columns:
                continue
            metric = METRIC_BY_NAME[name]
            n, n_sd = _col(people, f"value_{ratio.count}"), _col(people, f"sd_{ratio.count}")
            s = _col(people, f"value_{ratio.sum}") / ratio.divisor
            s_sd = _col(people, f"sd_{ratio.sum}") / ratio.divisor
            t = policy.k_scores + policy.z * n_sd
            half_range = (metric.high - metric.low) / 2
            limit = policy.max_interval_width[name]
            s_sd_i, n_sd_i = s_sd * inflate, n_sd * inflate  # (× 1 under zCDP)
            plain_lo, plain_hi = fieller_offset_interval(s, s_sd_i, n, n_sd_i, z_value(alpha), half_range)
            screen = plain_hi - plain_lo
            off_lo, off_hi = plain_lo.copy(), plain_hi.copy()
            for i in np.flatnonzero((n >= t) & (screen <= limit)):  # the figures that may be shown
                off_lo[i], off_hi[i] = selective_ratio_interval(
                    float(s[i]), float(s_sd_i[i]), float(n[i]), float(n_sd_i[i]), alpha, half_range, float(t[i]), limit
                )
            with np.errstate(divide="ignore", invalid="ignore"):
                offset = np.where(n > 0, s / n, np.nan)
                sd_ratio = np.where(n > 0, np.sqrt(s_sd**2 + offset**2 * n_sd**2) / n, np.nan)
            v, lo, hi = project(ratio.midpoint + offset, ratio.midpoint + off_lo, ratio.midpoint + off_hi,
                                metric.low, metric.high)  # fmt: skip
            out.append(
                _frame(
                    keys,
                    name,
                    value=v,
                    ci_low=lo,
                    ci_high=hi,
                    noise_sd=sd_ratio,
                    gate=n,
                    gate_threshold=t,
                    width_limit=limit,
                    screen_width=screen,
                    headcount=headcount,
                )
            )

    usage = _wide(noisy, "usage")
    if not usage.is_empty():
        keys = usage.select(key_cols)
        x, sd = _col(usage, "value_engaged"), _col(usage, "sd_engaged")
        t = policy.k + policy.z * sd
        lo, hi = truncated_interval(x, sd, t, alpha, floor=0.0, laplace=laplace)
        v, lo, hi = project(x, lo, hi, 0.0, math.inf)
        out.append(
            _frame(keys, "engaged_employees", value=v, ci_low=lo, ci_high=hi, noise_sd=sd, gate=x, gate_threshold=t)
        )
    if not out:
        return pl.DataFrame(schema=ESTIMATE_SCHEMA)
    return pl.concat([f.select(list(ESTIMATE_SCHEMA)) for f in out]).cast(ESTIMATE_SCHEMA)  # type: ignore[arg-type]
