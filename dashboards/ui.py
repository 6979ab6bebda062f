"""Shared page helpers: the signed-in principal, number formatting, the "how to read" panel.

Display only: rounding and clamping at zero happen here, never in the store (stored values
are unbiased and may be negative; clamping there would bias trends and sums).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import polars as pl
import streamlit as st

from dashboards.charts import METRIC_LABELS
from dashboards.frames import arrow_table
from privacy.periods import parse_period, period_of_month
from stores.principal import Principal

HIDDEN = "hidden — fewer than {k} people"
NO_RELEASES = "No releases yet. Numbers appear here once the first monthly release has been published."

_CLAMP: dict[str, tuple[float, float | None]] = {
    "engaged_employees": (0.0, None),
    "contacts": (0.0, None),
    "uptake_rate": (0.0, 1.0),
    "who5_mean": (0.0, 100.0),
    "satisfaction_mean": (1.0, 5.0),
}


def principal() -> Principal:
    """The principal the router resolved for this session (pages run only after sign-in)."""
    p = st.session_state.get("principal")
    if not isinstance(p, Principal):
        st.error("Please sign in.")
        st.stop()
    return p


def table(frame: pl.DataFrame, **kwargs: Any) -> None:
    """``st.dataframe`` of a polars frame, handed over as Arrow (never through pandas; see dashboards.frames)."""
    st.dataframe(arrow_table(frame), **kwargs)


def clamp(metric: str, value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    low, high = _CLAMP.get(metric, (-math.inf, None))
    value = max(low, value)
    return min(high, value) if high is not None else value


def fmt(metric: str, value: float | None) -> str:
    """Display text of one value (clamped to the metric's range, rounded)."""
    v = clamp(metric, value)
    if v is None:
        return "–"
    if metric == "uptake_rate":
        return f"{v:.1%}"
    if metric in ("engaged_employees", "contacts"):
        return f"{round(v):,}"
    if metric == "satisfaction_mean":
        return f"{v:.2f}"
    return f"{v:.1f}"


def fmt_interval(metric: str, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "–"
    return f"{fmt(metric, low)} – {fmt(metric, high)}"


def fmt_delta(metric: str, now: float | None, before: float | None) -> str | None:
    if now is None or before is None:
        return None
    d = now - before
    if metric == "uptake_rate":
        return f"{d * 100:+.1f} pp"
    if metric in ("engaged_employees", "contacts"):
        return f"{round(d):+,}"
    if metric == "satisfaction_mean":
        return f"{d:+.2f}"
    return f"{d:+.1f}"


def hidden_text(k: int | None) -> str:
    return HIDDEN.format(k=k if k is not None else "k")


def month_start(period: str) -> date:
    return parse_period(period).start


def monthly_periods(cells: pl.DataFrame) -> list[str]:
    """Months present in the cells (newest first); quarterly-only tables still have a month for engagement."""
    periods = cells["period"].unique().to_list()
    months = sorted({p for p in periods if parse_period(p).granularity == "month"}, reverse=True)
    if months:
        return months
    return sorted(set(periods), reverse=True)


def previous_month(month: str) -> str:
    p = parse_period(month)
    y, m = (p.year, p.first_month - 1) if p.first_month > 1 else (p.year - 1, 12)
    return f"{y:04d}-{m:02d}" if p.granularity == "month" else month


def cell_for(cells: pl.DataFrame, month: str, metric: str, dimension: str = "total", group: str = "all") -> dict | None:
    """The cell of ``metric`` for ``month``, or of the quarter containing it when the table is quarterly."""
    candidates = [month]
    if parse_period(month).granularity == "month":
        candidates.append(period_of_month(month, "quarter"))
    for period in candidates:
        rows = cells.filter(
            (pl.col("period") == period) & (pl.col("metric") == metric)
            & (pl.col("dimension") == dimension) & (pl.col("group_value") == group)
        )
        if rows.height:
            return rows.row(0, named=True)
    return None


def latest_k(releases: pl.DataFrame) -> int | None:
    """The ``k`` of the most recent release in ``releases`` (None when there is none)."""
    if releases.is_empty():
        return None
    return int(releases.sort("period")["k"][-1])


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def no_releases() -> None:
    st.info(NO_RELEASES, icon="ℹ️")


def how_to_read(k: int | None = None) -> None:
    """The short "how to read these numbers" panel."""
    k_text = str(k) if k is not None else "k"
    with st.expander("How to read these numbers", expanded=False):
        st.markdown(
            f"""
- **Values are approximate on purpose.** Every number is computed with a small amount of calibrated
  random noise (differential privacy), so that nobody can work out whether a particular colleague used
  the service or what their wellbeing score was. The noise is drawn once per release and never changes.
- **The interval** shown next to a value (95 %) is the range that contains the exact number with 95 %
  probability. Differences between months that stay inside the intervals are probably noise.
- **Hidden cells.** A group is shown only when it clearly has at least {k_text} people; otherwise it reads
  *"hidden — fewer than {k_text} people"*. Hidden means *not shown*, never zero. Subtracting visible groups
  from the total does not reveal a hidden group: the total carries its own noise.
- **Small values** may be shown as 0 and rates are kept between 0 % and 100 % for display; the stored
  figures are unrounded so that trends stay unbiased.
"""
        )
