"""Privacy officer: ρ and (ε, δ) spent per customer against the rolling 12-month cap, with the ledger."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import audit_hooks, charts, control, data, frames, ui
from dashboards.ledger import current_window, window_spend
from privacy.policy import implied_epsilon
from stores.exports import to_csv
from stores.labels import LEDGER_LABELS

me = ui.principal()
st.title("Privacy budget")
st.caption("From the published copy of the budget ledger (every draw, including re-issues).")

ledger = data.budget_ledger(me)
if ledger.is_empty():
    ui.no_releases()
    st.stop()

summary = current_window(ledger)
policies = control.current_policies(summary["customer_id"].to_list())
rows = []
for rec in summary.iter_rows(named=True):
    policy, _ = policies[rec["customer_id"]]
    cap = policy.cap.value
    rows.append(
        {
            "Customer": rec["customer_id"],
            "Latest period": rec["latest_period"],
            "Releases drawn": rec["releases"],
            "ρ in current 12-month window": round(rec["window_rho"], 4),
            "ρ cap (12 months)": round(cap, 4),
            "Cap used": f"{rec['window_rho'] / cap:.0%}",
            "ε in window (δ=%g)" % policy.delta: round(implied_epsilon(rec["window_rho"], policy.delta), 2),
            "ρ remaining": round(max(cap - rec["window_rho"], 0.0), 4),
        }
    )
st.subheader("All customers")
ui.table(pl.DataFrame(rows), hide_index=True, width="stretch", height=min(400, 36 + 35 * len(rows)))

st.subheader("One customer over time")
customers = summary["customer_id"].to_list()
wanted = st.query_params.get("customer")
customer = st.selectbox(
    "Customer", customers, index=customers.index(wanted) if wanted in customers else 0, key="budget_customer"
)
policy, version = control.current_policy(customer)
spend = window_spend(ledger.filter(pl.col("customer_id") == customer))
spend = spend.with_columns(
    month=frames.period_start(pl.col("period")),
    window_epsilon=pl.Series(
        [implied_epsilon(r, policy.delta) for r in spend["window_rho"].to_list()], dtype=pl.Float64
    ),
)
c1, c2, c3 = st.columns(3)
latest = spend.tail(1).row(0, named=True)
c1.metric("ρ in current window", f"{latest['window_rho']:.3f}", border=True, help=f"cap ρ = {policy.cap.value:g}")
c2.metric(
    "ε in current window",
    f"{implied_epsilon(latest['window_rho'], policy.delta):.2f}",
    border=True,
    help=f"(ε, δ)-DP with δ = {policy.delta:g}",
)
c3.metric(
    "Annual ε (cap)",
    f"{policy.annual_epsilon():.2f}",
    border=True,
    help=f"the policy's annual ε: ρ cap {policy.cap.value:.3f} at δ = {policy.delta:g}; policy version {version}",
)
st.vega_lite_chart(spec=charts.budget_over_time(spend, policy.cap.value), width="stretch")

st.subheader("Release history (ledger)")
history = (
    ledger.filter(pl.col("customer_id") == customer)
    .sort("created_at", descending=True)
    .select(
        "created_at",
        "period",
        "kind",
        "release_id",
        "rho",
        "epsilon",
        "delta",
        "policy_version",
        "requested_by",
        "code_version",
    )
)
ui.table(history.rename(LEDGER_LABELS, strict=False), hide_index=True, width="stretch")
audit_hooks.download_button(
    "Download this ledger (CSV)",
    lambda history=history: to_csv(history.rename(LEDGER_LABELS, strict=False)),
    file_name=f"ledger_{customer}.csv",
    principal=me,
    page="privacy_budget",
    mime="text/csv",
    key="ledger_csv",
)
