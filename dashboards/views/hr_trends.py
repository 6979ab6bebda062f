"""Customer HR: monthly trends with 95 % interval bands; optional comparison of sites or departments."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import audit_hooks, charts, data, frames, ui
from stores.exports import export_frame, to_csv

TREND_METRICS = (
    "uptake_rate",
    "contacts",
    "wellbeing_low_share",
    "wellbeing_improved_share",
    "who5_mean",
    "satisfaction_mean",
)

me = ui.principal()
customer = me.customer_id
st.title("Trends")
st.caption(f"Organisation **{customer}** · shaded bands are 95 % intervals")

compare = st.radio("Compare", ["Whole organisation", "Sites", "Departments"], horizontal=True, key="trend_compare")
dimension = {"Whole organisation": "total", "Sites": "site", "Departments": "department"}[compare]
cells = data.cells(me, customer, dimensions=[dimension])
if cells.is_empty():
    ui.no_releases()
    st.stop()

shown = (
    cells.filter(pl.col("metric").is_in(TREND_METRICS))
    .with_columns(month=frames.period_start(pl.col("period")))
    .sort("month")
)
if dimension != "total":
    groups = sorted(shown["group_value"].unique().to_list())
    # One selector per breakdown: a site selection must not leak into (and empty) the department selector.
    picked = st.multiselect(f"{compare} to compare", groups, default=groups[:4], key=f"trend_groups_{dimension}")
    shown = shown.filter(pl.col("group_value").is_in(picked))


# Display-only clamping of values and bands to each metric's range.
def _clamped(frame: pl.DataFrame, metric: str) -> pl.DataFrame:
    low, high = ui._CLAMP[metric]
    exprs = []
    for c in ("value", "ci_low", "ci_high"):
        e = pl.col(c).clip(lower_bound=low)
        exprs.append((e.clip(upper_bound=high) if high is not None else e).alias(c))
    return frame.with_columns(exprs)


left, right = st.columns(2)
for i, metric in enumerate(TREND_METRICS):
    frame = _clamped(shown.filter(pl.col("metric") == metric), metric)
    with left if i % 2 == 0 else right:
        if frame.filter(pl.col("value").is_not_null()).is_empty():
            st.info(f"{ui.metric_label(metric)}: nothing to show (hidden or not released).")
            continue
        st.vega_lite_chart(
            spec=charts.trend_with_band(frame, metric, series="group_value" if dimension != "total" else None),
            width="stretch",
        )

if dimension != "total":
    ui.hidden_groups_note(shown)
ui.how_to_read(ui.latest_k(data.releases(me, customer)))
export = shown.sort("metric", "group_value", "period")
audit_hooks.download_button(
    "Download these series (CSV)",
    lambda export=export: to_csv(export_frame(export)),
    file_name=f"wellbeing_trends_{customer}.csv",
    principal=me,
    page="hr_trends",
    mime="text/csv",
    key="trends_csv",
)
