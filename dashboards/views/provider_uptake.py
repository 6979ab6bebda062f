"""Provider: uptake and satisfaction across customers, service mix and topics over time (published releases only).

The provider sees use of its service and its own quality measure (satisfaction); it never sees
its customers' wellbeing outcomes (:data:`dashboards.data.PROVIDER_METRICS`).
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import audit_hooks, charts, data, frames, ui
from privacy.periods import period_of_month
from stores.exports import export_frame, to_csv
from stores.labels import SERVICE_LABELS, TOPIC_LABELS, metric_label, period_label

me = ui.principal()
st.title("Uptake across customers")
st.caption("Published, differentially private releases only · values are approximate")

totals = data.cells(me, dimensions=["total"])
if totals.is_empty():
    ui.no_releases()
    st.stop()

months = ui.monthly_periods(totals)
month = st.selectbox("Month", months, key="provider_month", format_func=period_label)
quarter = period_of_month(month, "quarter")


def _current(metric: str) -> pl.DataFrame:
    """Each customer's cell of ``metric`` for the month, or for its quarter when the table is quarterly."""
    rows = totals.filter((pl.col("metric") == metric) & pl.col("period").is_in([month, quarter]))
    return rows.sort("period").unique("customer_id", keep="first")  # 'YYYY-MM' sorts before 'YYYY-Qn'


customers = sorted(totals["customer_id"].unique().to_list())
table = pl.DataFrame({"customer_id": customers})
for metric in ("engaged_employees", "uptake_rate", "contacts", "satisfaction_mean"):
    cur = _current(metric).select("customer_id", pl.col("value").alias(metric), pl.col("status").alias(f"{metric}_s"))
    table = table.join(cur, on="customer_id", how="left")
table = table.sort("engaged_employees", descending=True, nulls_last=True)

engaged_sum = table["engaged_employees"].drop_nulls().clip(lower_bound=0).sum()
contacts_sum = table["contacts"].drop_nulls().clip(lower_bound=0).sum()
m1, m2, m3 = st.columns(3)
m1.metric("Customers released", f"{table.filter(pl.col('engaged_employees_s').is_not_null()).height:,}", border=True)
m2.metric("Employees who used the service (sum, approx.)", f"{round(engaged_sum):,}", border=True)
m3.metric("Contacts (sum, approx.)", f"{round(contacts_sum):,}", border=True)


def _shown(metric: str) -> list[str]:
    out = []
    for value, status in zip(table[metric].to_list(), table[f"{metric}_s"].to_list()):
        if status is None:
            out.append("not released")
        elif value is None:
            out.append("too uncertain" if status == "too_uncertain" else "hidden")
        else:
            out.append(ui.fmt(metric, value))
    return out


display = pl.DataFrame(
    {
        "Customer": table["customer_id"],
        **{
            metric_label(m) + (f" ({period_label(quarter)})" if m == "satisfaction_mean" else ""): _shown(m)
            for m in ("engaged_employees", "uptake_rate", "contacts", "satisfaction_mean")
        },
    }
)
st.subheader(f"Customers in {period_label(month)}")
ui.table(display, hide_index=True, width="stretch", height=min(420, 36 + 35 * display.height))

st.subheader("Over time")
picked = st.multiselect("Customers", customers, default=customers[:5], key="provider_customers")
trend_metric = st.radio(
    "Figure",
    ["uptake_rate", "satisfaction_mean", "contacts"],
    horizontal=True,
    format_func=metric_label,
    key="provider_trend_metric",
)
trend = (
    totals.filter(
        (pl.col("metric") == trend_metric) & pl.col("customer_id").is_in(picked) & pl.col("value").is_not_null()
    )
    .with_columns(month=frames.period_start(pl.col("period")))
    .sort("month")
)
if trend.is_empty():
    st.info("Nothing published for the chosen customers and figure." if picked else "Pick at least one customer.")
else:
    st.vega_lite_chart(
        spec=charts.multi_line(
            trend,
            y="value",
            series="customer_id",
            y_title=metric_label(trend_metric),
            fmt=charts.METRIC_FORMATS[trend_metric],
            title=f"{metric_label(trend_metric)} by customer",
            series_title="Customer",
        ),
        width="stretch",
    )

st.subheader("Service mix and topics")
c1, c2 = st.columns(2)
what = c1.radio(
    "Breakdown",
    ["service", "topic"],
    horizontal=True,
    key="provider_mix_dim",
    format_func=lambda d: "Services" if d == "service" else "Topics",
)
mix_customer = c2.selectbox("Customer", ["All picked customers", *picked], key="provider_mix_customer")
mix_cells = data.cells(me, dimensions=[what], metrics=["engaged_employees"])
names = SERVICE_LABELS if what == "service" else TOPIC_LABELS
scope = picked if mix_customer.startswith("All") else [mix_customer]
mix = (
    mix_cells.filter(pl.col("customer_id").is_in(scope) & pl.col("value").is_not_null())
    .group_by("period", "group_value")
    .agg(pl.col("value").clip(lower_bound=0.0).sum())
    .with_columns(
        group=pl.col("group_value").replace_strict(names, default=pl.col("group_value")),
        label=frames.period_label(pl.col("period")),
    )
    .sort("period")
)
if mix.is_empty():
    st.info("No service or topic breakdown is published for the chosen customers.")
else:
    order = mix["label"].unique(maintain_order=True).to_list()
    st.vega_lite_chart(
        spec=charts.stacked_share(
            mix,
            x="label",
            colour="group",
            title=f"{'Service mix' if what == 'service' else 'Topics'}"
            f" over time ({mix_customer.lower() if mix_customer.startswith('All') else mix_customer})",
            x_title="Period",
            colour_title="Service" if what == "service" else "Topic",
            x_order=order,
        ),
        width="stretch",
    )
    hidden = mix_cells.filter(pl.col("customer_id").is_in(scope) & pl.col("value").is_null())
    if hidden.height:
        st.caption(f"{hidden.height} customer-period groups are hidden (too few people to show reliably) and left out.")

st.subheader("Export")
e1, e2 = st.columns(2)
first = e1.selectbox("From", sorted(months), key="provider_export_from", format_func=period_label)
last = e2.selectbox("To", months, key="provider_export_to", format_func=period_label)
window = [
    p
    for p in totals["period"].unique().to_list()
    if first <= (p if "Q" not in p else f"{p[:4]}-{int(p[6]) * 3:02d}") <= last
]
everything = data.cells(me)
audit_hooks.download_button(
    f"Download {len(window)} periods (CSV)",
    lambda cells=everything, window=window: to_csv(
        export_frame(cells.filter(pl.col("period").is_in(window)).sort("customer_id", "period", "dimension", "metric"))
    ),
    file_name=f"uptake_{first}_{last}.csv",
    principal=me,
    page="provider_uptake",
    mime="text/csv",
    key="provider_csv",
)
st.caption("Contracted-capacity use is not shown: the published store holds no contract capacities.")
