"""Customer HR: one month broken down by department, site, role, service or topic.

A hidden cell says so in words (never blank, never zero); groups left out of the chart are listed under it.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import audit_hooks, charts, data, ui
from dashboards.data import METRICS, WELLBEING_METRICS
from privacy.periods import period_of_month
from stores.exports import export_frame, to_csv
from stores.labels import period_label

me = ui.principal()
customer = me.customer_id
st.title("Breakdown")
st.caption(f"Organisation **{customer}**")

all_cells = data.cells(me, customer, dimensions=["total"], metrics=["engaged_employees"])
if all_cells.is_empty():
    ui.no_releases()
    st.stop()
months = ui.monthly_periods(all_cells)
c1, c2 = st.columns(2)
month = c1.selectbox("Month", months, key="breakdown_month", format_func=period_label)
label = c2.selectbox("Break down by", ["Department", "Site", "Role", "Service", "Topic"], key="breakdown_dim")
dimension = label.lower()

cells = data.cells(me, customer, dimensions=[dimension])
rels = data.releases(me, customer)
quarter = period_of_month(month, "quarter")
cells = cells.filter(pl.col("period").is_in([month, quarter]))
k_by_period = dict(zip(rels["period"].to_list(), rels["k"].to_list()))
k_scores_by_period = dict(zip(rels["period"].to_list(), rels["k_scores"].to_list()))
alloc = data.allocations(me, customer)
not_measured = alloc.filter(
    pl.col("period").is_in([month, quarter]) & (pl.col("dimension") == dimension) & ~pl.col("measured")
)
for row in not_measured.iter_rows(named=True):
    # Public reason (a function of the policy and public headcount): say why, rather than show noise.
    st.info(
        f"The {row['figure_set']} figures of {row['period']} were not broken down by {label.lower()}: {row['reason']}"
    )
if cells.is_empty():
    if not_measured.is_empty():
        st.info(f"No {label.lower()} breakdown was released for {month}.")
    st.stop()

metrics = [m for m in METRICS if m in set(cells["metric"].to_list())]
groups = sorted(cells["group_value"].unique().to_list())
index = ui.cell_index(cells)
rows = []
for group in groups:
    row: dict[str, object] = {label: group}
    for metric in metrics:
        cell = ui.cell_for(index, month, metric, dimension, group)
        name = ui.metric_label(metric)
        if cell is None:
            row[name], row[f"{name} (95 % interval)"] = "–", "–"
        elif cell["suppressed"] or cell["value"] is None:
            k_used = (k_scores_by_period if metric in WELLBEING_METRICS else k_by_period).get(cell["period"])
            row[name], row[f"{name} (95 % interval)"] = ui.not_shown_text(cell, k_used), ""
        else:
            row[name] = ui.fmt(metric, cell["value"])
            row[f"{name} (95 % interval)"] = ui.fmt_interval(metric, cell["ci_low"], cell["ci_high"])
    sort_cell = ui.cell_for(index, month, "engaged_employees", dimension, group)
    row["_sort"] = -1e18 if sort_cell is None or sort_cell["value"] is None else float(sort_cell["value"])
    rows.append(row)

table = pl.DataFrame(rows).sort("_sort", descending=True).drop("_sort")
ui.table(table, hide_index=True, width="stretch")

chart_metric = st.selectbox("Chart", [ui.metric_label(m) for m in metrics], key="breakdown_chart")
metric = next(m for m in metrics if ui.metric_label(m) == chart_metric)
chart_cells = cells.filter((pl.col("metric") == metric))
low, high = ui._CLAMP[metric]
chart_cells = chart_cells.with_columns(
    [pl.col(c).clip(lower_bound=low, upper_bound=high) for c in ("value", "ci_low", "ci_high")]
)
if chart_cells.filter(pl.col("value").is_not_null()).is_empty():
    st.info("Every group is hidden for this metric.")
else:
    st.vega_lite_chart(spec=charts.bars_with_error(chart_cells, metric), width="stretch")

ui.hidden_groups_note(cells.filter(pl.col("metric") == metric))
ui.how_to_read(k_by_period.get(month))
audit_hooks.download_button(
    "Download this table (CSV)",
    lambda cells=cells: to_csv(export_frame(cells)),
    file_name=f"wellbeing_{dimension}_{customer}_{month}.csv",
    principal=me,
    page="hr_breakdown",
    mime="text/csv",
    key="breakdown_csv",
)
