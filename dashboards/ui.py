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
from stores.labels import ROLLUP_NOTE
from stores.principal import Principal

# True whatever the group's size: a group is hidden when its *noisy* count is not clearly above k,
# which can happen to a group of 15 as well as 5 (never "fewer than k people").
HIDDEN = "hidden — too few people to show reliably"
NO_RELEASES = "No releases yet. Numbers appear here once the first monthly release has been published."

_CLAMP: dict[str, tuple[float, float | None]] = {
    "engaged_employees": (0.0, None),
    "contacts": (0.0, None),
    "uptake_rate": (0.0, 1.0),
    "who5_mean": (0.0, 100.0),
    "wellbeing_low_share": (0.0, 1.0),
    "wellbeing_improved_share": (0.0, 1.0),
    "satisfaction_mean": (1.0, 5.0),
}
SHARES: frozenset[str] = frozenset({"uptake_rate", "wellbeing_low_share", "wellbeing_improved_share"})
TOO_UNCERTAIN = "too uncertain to show — its 95 % interval would be wider than the policy allows"


def joint_from_marginals(public: pl.DataFrame) -> pl.DataFrame:
    """An approximate site × department × role headcount from a customer's public marginals.

    The published store keeps each breakdown's public headcount separately; the what-if preview
    needs cells, so they are rebuilt assuming the breakdowns are independent (total × shares).
    Public inputs only; good enough to preview noise and thresholds, not a statement of fact.
    """
    latest = public.filter(pl.col("as_of") == pl.col("as_of").max())
    customer = str(latest["customer_id"][0])
    total_rows = latest.filter(pl.col("dimension") == "total")
    total = (
        float(total_rows["headcount"].sum())
        if total_rows.height
        else float(latest.filter(pl.col("dimension") == "department")["headcount"].sum())
    )

    def shares(dimension: str) -> list[tuple[str | None, float]]:
        rows = latest.filter(pl.col("dimension") == dimension)
        n = float(rows["headcount"].sum())
        if not rows.height or n <= 0:
            return [(None, 1.0)]
        return [(g, h / n) for g, h in zip(rows["group_value"].to_list(), rows["headcount"].to_list())]

    cells = [
        (customer, site, dept, role, round(total * ws * wd * wr))
        for site, ws in shares("site")
        for dept, wd in shares("department")
        for role, wr in shares("role")
    ]
    frame = pl.DataFrame(
        cells,
        schema={
            "customer_id": pl.String,
            "site": pl.String,
            "department": pl.String,
            "role": pl.String,
            "headcount": pl.Int64,
        },
        orient="row",
    )
    return frame.filter(pl.col("headcount") > 0)


def hidden_groups_note(cells: pl.DataFrame) -> None:
    """Under a chart: the groups it leaves out (hidden or too uncertain), and what roll-up groups are."""
    not_shown = cells.filter(pl.col("value").is_null())
    if not_shown.height:
        names = sorted(not_shown["group_value"].unique().to_list())
        st.caption("Not in the chart (hidden — too few people to show reliably, or too uncertain): " + ", ".join(names))
    if cells.height and cells["group_value"].str.starts_with("[").any():
        st.caption(ROLLUP_NOTE)


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
    if metric in SHARES:
        return f"{v:.0%}"
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
    if metric in SHARES:
        return f"{d * 100:+.1f} pp"
    if metric in ("engaged_employees", "contacts"):
        return f"{round(d):+,}"
    if metric == "satisfaction_mean":
        return f"{d:+.2f}"
    return f"{d:+.1f}"


def hidden_text(k: int | None = None) -> str:
    """The text of a hidden cell (``k`` is kept for callers; the words do not claim a group size)."""
    return HIDDEN


def not_shown_text(cell: dict, k: int | None) -> str:
    """Why a cell is not shown, in plain words: too few people, or too uncertain to be useful."""
    return TOO_UNCERTAIN if cell.get("status") == "too_uncertain" else hidden_text(k)


def status_label(cell: dict) -> str:
    """The short word a tile shows for a cell that is not published."""
    return "too uncertain" if cell.get("status") == "too_uncertain" else "hidden"


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


def change_is_reliable(now: dict, before: dict, z: float = 1.96) -> bool:
    """Whether the change between two published cells is more than noise: the 95 % interval of the
    difference, value ± z·√(sd₁² + sd₂²) from the cells' public noise sd, excludes zero.

    The two releases' noise is independent (drawn once per release), so the variances add.
    Without a noise sd (an older store) the intervals must not overlap, which is stricter.
    """
    if now.get("value") is None or before.get("value") is None:
        return False
    sd_now, sd_before = now.get("noise_sd"), before.get("noise_sd")
    if sd_now is None or sd_before is None:
        return bool(now["ci_low"] > before["ci_high"] or now["ci_high"] < before["ci_low"])
    return abs(now["value"] - before["value"]) > z * math.hypot(sd_now, sd_before)


def previous_period(period: str) -> str:
    """The period before ``period`` of the same granularity (month or quarter)."""
    p = parse_period(period)
    if p.granularity == "month":
        return previous_month(period)
    q = (p.first_month - 1) // 3 + 1
    return f"{p.year - 1:04d}-Q4" if q == 1 else f"{p.year:04d}-Q{q - 1}"


CellKey = tuple[str, str, str, str]  # (period, metric, dimension, group_value)


def cell_index(cells: pl.DataFrame) -> dict[CellKey, dict]:
    """The cells by (period, metric, dimension, group): one pass, then each lookup is a dict access.

    A page that looks up many cells (a table of groups × metrics) used to filter the frame once
    per lookup, which was the largest part of a render's CPU under load.
    """
    index: dict[CellKey, dict] = {}
    for row in cells.iter_rows(named=True):
        index.setdefault((row["period"], row["metric"], row["dimension"], row["group_value"]), row)
    return index


def cell_for(
    cells: pl.DataFrame | dict[CellKey, dict], month: str, metric: str, dimension: str = "total", group: str = "all"
) -> dict | None:
    """The cell of ``metric`` for ``month``, or of the quarter containing it when the table is quarterly.

    ``cells`` is a frame of cells or, for many lookups, its :func:`cell_index`.
    """
    index = cell_index(cells) if isinstance(cells, pl.DataFrame) else cells
    candidates = [month]
    if parse_period(month).granularity == "month":
        candidates.append(period_of_month(month, "quarter"))
    for period in candidates:
        found = index.get((period, metric, dimension, group))
        if found is not None:
            return found
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
- **Hidden cells.** A group is shown only when its approximate count is clearly above {k_text}; otherwise it reads
  *"hidden — too few people to show reliably"*. Hidden means *not shown*, never zero. Subtracting visible groups
  from the total does not reveal a hidden group: the total carries its own noise.
- **Too uncertain.** A wellbeing figure whose interval would be wider than the privacy officer allows
  reads *"too uncertain"* rather than a number nobody should act on. The interval of a small group that
  is shown accounts for its having been shown (it is wider, and honest).
- **Wellbeing figures** are over a quarter, among people with a WHO-5 score: *low wellbeing* is the
  share whose latest score is below 50 (the standard screening cut-off); *improved* is the share of people
  with two scores whose latest is at least 10 points above their first (a clinically meaningful change).
- **Changes** (the arrows) are shown only when the two periods' intervals do not overlap.
"""
        )
