"""Privacy officer: what-if tuner. Expected interval widths and suppression shares for a candidate
policy, from the noise scale and the public headcounts only (never from usage data; spends nothing).
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from dashboards import control, data, ui
from dashboards.frames import chart_data
from privacy.accuracy import expected_interval_halfwidths, expected_suppression_share
from privacy.budget import release_cost
from privacy.policy import PolicyError, apply_policy_updates, implied_epsilon

me = ui.principal()
st.title("What-if tuner")
st.caption("Explore a candidate policy before setting it. Computed from public headcounts and the noise "
           "scale only: no personal data is read and no budget is spent.")

current, version = control.current_policy(None)
headcount = data.public_headcount(me)
if not headcount.is_empty():
    headcount = headcount.filter(pl.col("as_of") == pl.col("as_of").max().over("customer_id"))

c1, c2, c3, c4 = st.columns(4)
accounting = c1.selectbox("Accounting", ["zcdp", "pure"], index=["zcdp", "pure"].index(current.accounting), key="wi_acc")
if accounting == "zcdp":
    budget = c2.number_input("ρ per release", min_value=0.005, max_value=5.0, value=float(current.rho_per_release),
                             step=0.05, format="%.3f", key="wi_rho")
else:
    budget = c2.number_input("ε per release", min_value=0.05, max_value=5.0, value=float(current.epsilon_per_release),
                             step=0.1, format="%.2f", key="wi_eps")
k = c3.number_input("k (minimum group)", min_value=2, max_value=100, value=int(current.k), step=1, key="wi_k")
z = c4.number_input("z (margin)", min_value=0.0, max_value=10.0, value=float(current.z), step=0.1, key="wi_z")
d1, d2 = st.columns(2)
cap = d1.number_input("ρ cap per 12 months", min_value=0.01, max_value=100.0, value=float(current.rho_cap_12m),
                      step=0.25, key="wi_cap")
uptake = d2.slider("Assumed uptake (share of headcount engaging in a month)", 0.01, 0.5, 0.15, 0.01, key="wi_uptake")

updates: dict[str, object] = {"accounting": accounting, "k": int(k), "z": float(z), "rho_cap_12m": float(cap)}
updates["rho_per_release" if accounting == "zcdp" else "epsilon_per_release"] = float(budget)
try:
    candidate = apply_policy_updates(current, updates)
except PolicyError as exc:
    st.error(str(exc))
    st.stop()

cost = release_cost(candidate, "2025-01")
m1, m2, m3 = st.columns(3)
m1.metric("ε of one monthly release", f"{cost.epsilon:.2f}", border=True,
          help=f"(ε, δ) with δ = {candidate.delta:g}" if accounting == "zcdp" else "pure ε-DP")
m2.metric("Releases per year within the cap", f"{int(candidate.rho_cap_12m // cost.rho + 1e-9):,}", border=True)
m3.metric("Annual ε at the cap", f"{implied_epsilon(candidate.rho_cap_12m, candidate.delta):.2f}", border=True,
          help=f"ρ cap {candidate.rho_cap_12m:g} at δ = {candidate.delta:g}")

st.subheader("Expected 95 % interval half-width per metric")
cand_hw = expected_interval_halfwidths(candidate)
cur_hw = expected_interval_halfwidths(current).select("table", "metric", "dimension", pl.col("halfwidth").alias("current"))
compare = cand_hw.join(cur_hw, on=["table", "metric", "dimension"], how="left").select(
    pl.col("metric").alias("Metric"), pl.col("dimension").alias("Cells"), pl.col("granularity").alias("Released per"),
    pl.col("halfwidth").round(2).alias("± candidate"), pl.col("current").round(2).alias(f"± current (v{version})"),
    pl.col("unit").alias("Unit"), pl.col("assumption").alias("Assumption"),
)
ui.table(compare, hide_index=True, width="stretch")

st.subheader("Expected share of hidden cells per customer")
if headcount.is_empty():
    st.info("No public headcounts are published yet, so suppression cannot be previewed.")
else:
    supp = expected_suppression_share(candidate, headcount, assumed_uptake=uptake)
    cur_supp = expected_suppression_share(current, headcount, assumed_uptake=uptake).select(
        "customer_id", pl.col("expected_share").alias("current_share"))
    supp = supp.join(cur_supp, on="customer_id", how="left").sort("expected_share", descending=True)
    s1, s2 = st.columns(2)
    s1.metric("Mean hidden share, candidate", f"{supp['expected_share'].mean():.0%}", border=True)
    s2.metric("Mean hidden share, current", f"{supp['current_share'].mean():.0%}", border=True)
    long = supp.unpivot(index="customer_id", on=["expected_share", "current_share"], variable_name="policy",
                        value_name="share").with_columns(pl.col("policy").replace({"expected_share": "candidate",
                                                                                   "current_share": "current"}))
    chart = (
        alt.Chart(chart_data(long)).mark_bar()
        .encode(
            x=alt.X("customer_id:N", title="Customer", sort=None),
            xOffset="policy:N",
            y=alt.Y("share:Q", title="Expected hidden cells", axis=alt.Axis(format="%")),
            color=alt.Color("policy:N", title="Policy", scale=alt.Scale(range=["#0072B2", "#BBBBBB"])),
            tooltip=["customer_id:N", "policy:N", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=280)
    )
    st.altair_chart(chart, width="stretch")

st.subheader("Choosing the budget: accuracy against ε")
sweep_rows = []
for rho in (0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0):
    try:
        p = apply_policy_updates(candidate, {"accounting": "zcdp", "rho_per_release": rho,
                                             "rho_cap_12m": max(candidate.rho_cap_12m, rho)})
    except PolicyError:
        continue
    hw = expected_interval_halfwidths(p)
    engaged = hw.filter((pl.col("metric") == "engaged_employees") & (pl.col("dimension") == "breakdowns"))
    sweep_rows.append({"epsilon per release": release_cost(p, "2025-01").epsilon,
                       "± engaged employees": float(engaged["halfwidth"][0]) if engaged.height else None})
sweep = pl.DataFrame(sweep_rows)
st.altair_chart(
    alt.Chart(chart_data(sweep)).mark_line(point=True, color="#0072B2").encode(
        x=alt.X("epsilon per release:Q", title="ε per monthly release (δ = %g)" % candidate.delta, scale=alt.Scale(type="log")),
        y=alt.Y("± engaged employees:Q", title="± engaged employees (95 %)"),
        tooltip=[alt.Tooltip("epsilon per release:Q", format=".2f"), alt.Tooltip("± engaged employees:Q", format=".1f")],
    ).properties(height=260),
    width="stretch",
)
st.caption("Set the chosen values on the Policy page; they apply to future releases only.")
