"""Customer HR: headline tiles for one month, each with its 95 % interval and the change vs the previous month."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, data, frames, ui
from dashboards.data import METRICS

me = ui.principal()
customer = me.customer_id
st.title("Overview")
st.caption(f"Organisation **{customer}** · approximate figures protected by differential privacy")

cells = data.cells(me, customer, dimensions=["total"])
if cells.is_empty():
    ui.no_releases()
    st.stop()

rels = data.releases(me, customer)
months = ui.monthly_periods(cells)
month = st.selectbox("Month", months, index=0, key="overview_month")
prev = ui.previous_month(month)
k_row = rels.filter(pl.col("period") == month)
k = int(k_row["k"][0]) if k_row.height else None

rows = []
columns = st.columns(len(METRICS))
for col, metric in zip(columns, METRICS):
    cell = ui.cell_for(cells, month, metric)
    before = ui.cell_for(cells, prev, metric)
    label = ui.metric_label(metric)
    with col:
        if cell is None:
            st.metric(label, "not released", border=True)
            rows.append({"metric": label, "period": month, "value": None, "ci_low": None, "ci_high": None, "note": "not released"})
            continue
        if cell["suppressed"] or cell["value"] is None:
            st.metric(label, "hidden", border=True, help=ui.hidden_text(cell_k := k))
            st.caption(ui.hidden_text(cell_k))
            rows.append({"metric": label, "period": cell["period"], "value": None, "ci_low": None, "ci_high": None, "note": ui.hidden_text(k)})
            continue
        same_period = before is not None and before["period"] == cell["period"]  # quarterly table
        prev_value = None if before is None or before["suppressed"] or same_period else before["value"]
        delta = ui.fmt_delta(metric, ui.clamp(metric, cell["value"]), ui.clamp(metric, prev_value))
        st.metric(
            label,
            ui.fmt(metric, cell["value"]),
            delta=f"{delta} vs {prev}" if delta else None,
            delta_color="off" if metric in ("contacts", "engaged_employees") else "normal",
            border=True,
            help="95 % interval: " + ui.fmt_interval(metric, cell["ci_low"], cell["ci_high"]),
        )
        st.caption("95 % interval: " + ui.fmt_interval(metric, cell["ci_low"], cell["ci_high"]))
        rows.append({
            "metric": label, "period": cell["period"], "value": ui.fmt(metric, cell["value"]),
            "ci_low": ui.fmt(metric, cell["ci_low"]), "ci_high": ui.fmt(metric, cell["ci_high"]), "note": "",
        })

trend = (
    cells.filter((pl.col("metric") == "uptake_rate") & pl.col("value").is_not_null())
    .with_columns(month=frames.period_start(pl.col("period")))
    .filter(pl.col("month") <= ui.month_start(month))
    .sort("month")
    .tail(12)
    .with_columns([pl.col(c).clip(0.0, 1.0) for c in ("value", "ci_low", "ci_high")])
)
if trend.height >= 2:
    st.altair_chart(charts.trend_with_band(trend, "uptake_rate"), width="stretch")

ui.how_to_read(k)
table = pl.DataFrame(rows, schema={"metric": pl.String, "period": pl.String, "value": pl.String,
                                   "ci_low": pl.String, "ci_high": pl.String, "note": pl.String})
st.download_button(
    "Download these figures (CSV)",
    table.write_csv(),
    file_name=f"wellbeing_overview_{customer}_{month}.csv",
    mime="text/csv",
    key="overview_csv",
)
