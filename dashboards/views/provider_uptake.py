"""Provider: service uptake across customers from published releases only (engaged, uptake, contacts, mix)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, data, frames, ui
from privacy.periods import period_of_month

me = ui.principal()
st.title("Uptake across customers")
st.caption("Published, differentially private releases only · values are approximate")

totals = data.cells(me, dimensions=["total"], metrics=["engaged_employees", "uptake_rate", "contacts"])
if totals.is_empty():
    ui.no_releases()
    st.stop()

months = ui.monthly_periods(totals)
month = st.selectbox("Month", months, key="provider_month")

wide = (
    totals.filter(pl.col("period") == month)
    .pivot(on="metric", index="customer_id", values="value", aggregate_function="first")
)
for metric in ("engaged_employees", "uptake_rate", "contacts"):
    if metric not in wide.columns:
        wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(metric))
wide = wide.sort("engaged_employees", descending=True, nulls_last=True)

n_customers = wide.height
engaged_sum = wide["engaged_employees"].drop_nulls().clip(lower_bound=0).sum()
contacts_sum = wide["contacts"].drop_nulls().clip(lower_bound=0).sum()
m1, m2, m3 = st.columns(3)
m1.metric("Customers released", f"{n_customers:,}", border=True)
m2.metric("Engaged employees (sum, approx.)", f"{round(engaged_sum):,}", border=True)
m3.metric("Contacts (sum, approx.)", f"{round(contacts_sum):,}", border=True)


def _shown(metric: str) -> list[str]:
    return [ui.fmt(metric, v) if v is not None else "hidden" for v in wide[metric].to_list()]


display = pl.DataFrame({
    "Customer": wide["customer_id"],
    "Engaged employees": _shown("engaged_employees"),
    "Uptake rate": _shown("uptake_rate"),
    "Contacts": _shown("contacts"),
})
st.subheader(f"Customers in {month}")
ui.table(display, hide_index=True, width="stretch", height=min(420, 36 + 35 * display.height))

st.subheader("Trend")
customers = wide["customer_id"].to_list()
picked = st.multiselect("Customers", customers, default=customers[:5], key="provider_customers")
trend = (
    totals.filter((pl.col("metric") == "uptake_rate") & pl.col("customer_id").is_in(picked) & pl.col("value").is_not_null())
    .with_columns(month=frames.period_start(pl.col("period")),
                  value=pl.col("value").clip(0.0, 1.0))
    .sort("month")
)
if trend.is_empty():
    st.info("Pick at least one customer.")
else:
    st.altair_chart(
        charts.multi_line(trend, y="value", series="customer_id", y_title="Uptake rate", fmt=".1%",
                          title="Uptake rate by customer"),
        width="stretch",
    )

st.subheader("Service mix")
services = data.cells(me, dimensions=["service"], metrics=["engaged_employees"])
# Services are released per quarter by default: the month's own release, else its quarter's.
mix_period = month if services.filter(pl.col("period") == month).height else period_of_month(month, "quarter")
mix = services.filter((pl.col("period") == mix_period) & pl.col("customer_id").is_in(picked)
                      & pl.col("value").is_not_null())
mix = mix.with_columns(pl.col("value").clip(lower_bound=0.0)).rename({"group_value": "service"})
if mix.is_empty():
    st.info("No service breakdown published for the chosen customers and month.")
else:
    st.altair_chart(charts.stacked_share(mix, x="customer_id", colour="service", title=f"Service mix, {mix_period}"),
                    width="stretch")
st.caption("Contracted-capacity use is not shown: the published store holds no contract capacities.")
ui.how_to_read(ui.latest_k(data.releases(me)))
st.download_button("Download the customer table (CSV)", display.write_csv(), file_name=f"uptake_{month}.csv",
                   mime="text/csv", key="provider_csv")
