"""Customer HR: headline tiles for one month, each with its 95 % interval and the change vs the previous month."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import audit_hooks, charts, data, frames, ui
from dashboards.data import WELLBEING_METRICS
from privacy.periods import period_of_month
from stores.exports import export_frame, to_csv
from stores.labels import period_label

ENGAGEMENT = ("engaged_employees", "uptake_rate", "contacts")

me = ui.principal()
customer = me.customer_id
st.title("Overview")
st.caption(f"Organisation **{customer}** · approximate figures protected by differential privacy")

cells = data.cells(me, customer, dimensions=["total"])
if cells.is_empty():
    ui.no_releases()
    st.stop()

rels = data.releases(me, customer)
index = ui.cell_index(cells)
months = ui.monthly_periods(cells)
month = st.selectbox("Month", months, index=0, key="overview_month", format_func=period_label)
k_row = rels.filter(pl.col("period") == month)
k = int(k_row["k"][0]) if k_row.height else None


def tile(metric: str) -> None:
    """One headline tile: value, 95 % interval and change vs the previous period, or why it is not shown."""
    cell = ui.cell_for(index, wellbeing_period if metric in WELLBEING_METRICS else month, metric)
    before = None if cell is None else ui.cell_for(index, ui.previous_period(cell["period"]), metric)
    label = ui.metric_label(metric)
    if cell is None:
        st.metric(label, "not released", border=True)
        return
    shown_cells.append(cell)
    if cell["suppressed"] or cell["value"] is None:
        why = ui.not_shown_text(cell, k_scores if metric in WELLBEING_METRICS else k)
        st.metric(label, ui.status_label(cell), border=True, help=why)
        st.caption(why)
        return
    prev_value = None if before is None or before["suppressed"] else before["value"]
    # A change is shown only when the 95 % interval of the difference excludes zero; otherwise the
    # arrow would be noise, and the tile says "no reliable change".
    reliable = prev_value is not None and before is not None and ui.change_is_reliable(cell, before)
    delta = ui.fmt_delta(metric, ui.clamp(metric, cell["value"]), ui.clamp(metric, prev_value)) if reliable else None
    st.metric(
        label,
        ui.fmt(metric, cell["value"]),
        delta=(
            f"{delta} vs {period_label(before['period'])}"
            if delta and before
            else f"no reliable change vs {period_label(before['period'])}"
            if prev_value is not None and before
            else None
        ),
        delta_color="off"
        if metric in ("contacts", "engaged_employees") or not delta
        else ("inverse" if metric == "wellbeing_low_share" else "normal"),
        delta_arrow="auto" if delta else "off",
        border=True,
        help="95 % interval: "
        + ui.fmt_interval(metric, cell["ci_low"], cell["ci_high"])
        + (
            ""
            if delta or prev_value is None
            else ". The change since the previous period is within the noise "
            "(the 95 % interval of the difference includes zero)."
        ),
    )
    st.caption("95 % interval: " + ui.fmt_interval(metric, cell["ci_low"], cell["ci_high"]))


# Wellbeing is released per quarter by default: the quarter containing the month once it is released,
# else the latest released quarter before it (so a mid-quarter month still shows the last outcomes).
quarter = period_of_month(month, "quarter")
released = set(rels["period"].to_list())
wellbeing_period = month
if (
    month not in released
    or not cells.filter((pl.col("period") == month) & pl.col("metric").is_in(WELLBEING_METRICS)).height
):
    wellbeing_period = quarter if quarter in released else ui.previous_period(quarter)
k_scores_row = rels.filter(pl.col("period") == wellbeing_period)
k_scores = int(k_scores_row["k_scores"][0]) if k_scores_row.height else k
shown_cells: list[dict] = []
st.subheader("Use of the service")
for col, metric in zip(st.columns(3), ENGAGEMENT):
    with col:
        tile(metric)
st.subheader("Wellbeing of the people who use it")
if wellbeing_period != month and wellbeing_period in released:
    st.caption(
        f"Over {period_label(wellbeing_period)}"
        + (
            f", the quarter containing {period_label(month)}"
            if wellbeing_period == quarter
            else f", the latest quarter released by {period_label(month)}"
        )
        + ": among people with a WHO-5 score (low wellbeing, average) or with two scores (improved)."
    )
for col, metric in zip(st.columns(len(WELLBEING_METRICS)), WELLBEING_METRICS):
    with col:
        tile(metric)

trend = (
    cells.filter((pl.col("metric") == "uptake_rate") & pl.col("value").is_not_null())
    .with_columns(month=frames.period_start(pl.col("period")))
    .filter(pl.col("month") <= ui.month_start(month))
    .sort("month")
    .tail(12)
    .with_columns([pl.col(c).clip(0.0, 1.0) for c in ("value", "ci_low", "ci_high")])
)
if trend.height >= 2:
    st.vega_lite_chart(spec=charts.trend_with_band(trend, "uptake_rate"), width="stretch")

ui.how_to_read(k)
audit_hooks.download_button(
    "Download these figures (CSV)",
    lambda shown=shown_cells, schema=cells.schema: to_csv(export_frame(pl.DataFrame(shown, schema=schema))),
    file_name=f"wellbeing_overview_{customer}_{month}.csv",
    principal=me,
    page="hr_overview",
    mime="text/csv",
    key="overview_csv",
)
