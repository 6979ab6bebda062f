"""Privacy officer: what-if tuner. For a candidate policy: the annual ε and what each release spends,
which breakdowns would be measured, and each figure's expected 95 % interval and chance of being shown —
beside the current policy, for a reference organisation or a customer's public headcount.

Privacy reason: computed by :func:`privacy.accuracy.preview` from the policy and public headcounts
only (never from usage data); it spends no budget. "Apply" stores the candidate through the
same validated, recorded policy change as the Policy page.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, control, data, ui
from privacy.accuracy import preview, reference_headcount
from privacy.policy import (
    DEFAULT_POLICY,
    PolicyError,
    ReleasePolicy,
    apply_policy_updates,
    policy_to_flat,
    policy_warnings,
)

me = ui.principal()
st.title("What-if tuner")
st.caption(
    "Explore a candidate policy before setting it. Computed from public headcounts and the policy "
    "only: no personal data is read and no budget is spent."
)

customers = data.customers(me)
org = st.selectbox("Organisation", ["A reference organisation", *customers], key="wi_org")
scope = None if org.startswith("A reference") else org
current, version = control.current_policy(scope)

if scope is None:
    size = st.select_slider(
        "Employees", [250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000], value=2_000, key="wi_size"
    )
    headcount = reference_headcount(int(size))
else:
    public = data.public_headcount(me, scope)
    if public.is_empty():
        st.info(f"No public headcount of {scope} is published yet; pick the reference organisation.")
        st.stop()
    headcount = ui.joint_from_marginals(public)

c1, c2, c3, c4 = st.columns(4)
epsilon = c1.number_input(
    "Annual ε",
    min_value=0.5,
    max_value=20.0,
    value=float(current.epsilon_annual),
    step=0.5,
    key="wi_eps",
    help="The privacy loss of all releases of any 12 months, at δ = "
    f"{current.delta:g}. Above 10 is accepted only with a recorded warning.",
)
k = c2.number_input("k (minimum group)", min_value=2, max_value=100, value=int(current.k), step=1, key="wi_k")
k_scores = c3.number_input(
    "k for wellbeing figures", min_value=2, max_value=100, value=int(current.k_scores), step=1, key="wi_ks"
)
z = c4.number_input("z (margin)", min_value=0.0, max_value=5.0, value=float(current.z), step=0.1, key="wi_z")
d1, d2 = st.columns(2)
cadence = d1.selectbox(
    "Wellbeing released per",
    ["quarter", "month"],
    index=["quarter", "month"].index(current.granularity["wellbeing"]),
    key="wi_cadence",
)
reserve = d2.slider("Budget kept for re-issues", 0.0, 0.5, float(current.reserve_share), 0.05, key="wi_reserve")

updates: dict[str, object] = {
    "epsilon_annual": float(epsilon),
    "k": int(k),
    "k_scores": int(k_scores),
    "z": float(z),
    "granularity.wellbeing": cadence,
    "reserve_share": float(reserve),
}
try:
    candidate = apply_policy_updates(current, updates)
except PolicyError as exc:
    st.error(f"Not a valid policy: {exc}")
    st.stop()
for warning in policy_warnings(candidate):
    st.warning(f"Risky setting: {warning}", icon="⚠️")

m1, m2, m3 = st.columns(3)
m1.metric(
    "Annual ε",
    f"{candidate.epsilon_annual:g}",
    delta=f"{candidate.epsilon_annual - current.epsilon_annual:+g}"
    if candidate.epsilon_annual != current.epsilon_annual
    else None,
    delta_color="inverse",
    border=True,
    help=f"(ε, δ)-DP over any 12 months, δ = {candidate.delta:g}; ρ = {candidate.cap.value:.3f}",
)
m2.metric("ρ of a monthly release", f"{candidate.release_budget('2025-01').charge.value:.4f}", border=True)
m3.metric("ρ of a quarterly release", f"{candidate.release_budget('2025-Q1').charge.value:.4f}", border=True)


@st.cache_data(max_entries=64, show_spinner="Computing the preview …")
def _preview(
    flat: tuple[tuple[str, str], ...], organisation: str, hc: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The preview of one policy and organisation (public inputs only, so shared safely across sessions)."""
    policy = apply_policy_updates(DEFAULT_POLICY, dict(flat))
    result = preview(policy, hc)
    return result.summary, result.allocations


def _flat(policy: ReleasePolicy) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in policy_to_flat(policy).items()))


cand_summary, cand_alloc = _preview(_flat(candidate), org, headcount)
cur_summary, _ = _preview(_flat(current), org, headcount)

st.subheader("Expected figures")
keys = ["granularity", "metric", "dimension"]
compare = cand_summary.join(
    cur_summary.select(*keys, pl.col("halfwidth").alias("cur_hw"), pl.col("shown").alias("cur_shown")),
    on=keys,
    how="full",
    coalesce=True,
).sort("granularity", "metric", "dimension")
display = compare.select(
    pl.col("metric").replace_strict(charts.METRIC_LABELS, default=pl.col("metric")).alias("Figure"),
    pl.col("dimension").alias("Breakdown"),
    pl.col("granularity").alias("Per"),
    pl.col("groups").alias("Groups"),
    pl.col("halfwidth").round(3).alias("± candidate (95 %)"),
    pl.col("cur_hw").round(3).alias(f"± current (v{version})"),
    (pl.col("shown") * 100).round(0).alias("% shown, candidate"),
    (pl.col("cur_shown") * 100).round(0).alias("% shown, current"),
    (pl.col("too_uncertain") * 100).round(0).alias("% too uncertain, candidate"),
)
ui.table(display, hide_index=True, width="stretch")
st.caption(
    "± is the expected half-width of a figure clearly above its threshold (a figure near the threshold "
    "gets a wider, selection-aware interval). Shares are percentage points of a share (0–1)."
)

st.subheader("Where the budget goes")
alloc = cand_alloc.select(
    pl.col("granularity").alias("Per"),
    pl.col("figure_set").alias("Table"),
    pl.col("dimension").alias("Breakdown"),
    pl.when(pl.col("measured")).then(pl.lit("measured")).otherwise(pl.lit("not measured")).alias("Measured"),
    (pl.col("share") * 100).round(0).alias("% of the table's budget"),
    pl.col("reason").alias("Why not"),
)
ui.table(alloc, hide_index=True, width="stretch")

st.subheader("Apply")
changes = {
    key: str(value)
    for key, value in policy_to_flat(candidate).items()
    if str(policy_to_flat(current)[key]) != str(value)
}
if not changes:
    st.caption("The candidate equals the current policy.")
else:
    st.write("Changes: " + ", ".join(f"`{key}` → {value}" for key, value in changes.items()))
    target = "the default (all customers)" if scope is None else scope
    if st.button(f"Apply to {target}", type="primary", key="wi_apply"):
        try:
            stored = control.set_policy_values(me, changes, customer_id=scope)
        except (PolicyError, ValueError) as exc:
            st.error(f"Not saved: {exc}")
        else:
            st.success(f"Saved as policy version {stored[0].policy_version}; it applies to future releases only.")
            for warning in stored[0].warnings:
                st.warning(f"Accepted with a recorded warning: {warning}", icon="⚠️")
