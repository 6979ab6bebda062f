"""Privacy officer: view and edit the release policy (default or per customer).

Each change is validated, recorded with who / when / old / new in the control store, and
applies to future releases only (a stored release keeps the policy version it was drawn under).
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import control, data, ui
from privacy.policy import LEVELS, POLICY_KEYS, PolicyError, policy_to_flat, policy_warnings
from privacy.policy import TABLES as TABLE_NAMES

me = ui.principal()
st.title("Release policy")

EDITABLE: dict[str, str] = {
    "epsilon_annual": "Annual ε: the privacy loss of any 12 months of releases (the one budget dial)",
    "delta": "δ of the annual (ε, δ) guarantee",
    "k": "Minimum group size k (counts)",
    "k_scores": "Minimum people with scores for a wellbeing figure",
    "z": "Suppression margin z (in noise standard deviations)",
    "reserve_share": "Share of the annual budget kept free for re-issues",
    "accounting": "Accounting (zcdp or pure)",
    "alpha": "Intervals are 1 − α",
    "max_contacts_per_month": "Contacts counted per employee and month",
    "max_services_per_period": "Services one employee counts towards per period",
    "max_topics_per_period": "Topics one employee counts towards per period",
    **{f"granularity.{t}": f"Cadence of the {t} table (month or quarter)" for t in TABLE_NAMES},
    **{f"table_shares.{t}": f"Share of the budget for the {t} table" for t in TABLE_NAMES},
    **{f"breakdown_weights.{lvl}": f"Weight of the {lvl} breakdown inside a table" for lvl in LEVELS},
    **{
        k: "Widest 95 % interval shown: " + k.split(".", 1)[1]
        for k in POLICY_KEYS
        if k.startswith("max_interval_width.")
    },
    **{
        k: "Planning assumption: " + k.split(".", 1)[1].replace("_", " ")
        for k in POLICY_KEYS
        if k.startswith("assumptions.")
    },
}

customers = data.customers(me)
scope_label = st.selectbox("Scope", ["Default (all customers)"] + customers, key="policy_scope")
customer = None if scope_label.startswith("Default") else scope_label
policy, version = control.current_policy(customer)
flat = policy_to_flat(policy)

st.caption(
    f"Effective policy version {version} · annual privacy loss ε = {policy.epsilon_annual:g} at δ = {policy.delta:g} "
    f"(ρ = {policy.cap.value:.3f} over any 12 months) · a monthly release spends ρ = "
    f"{policy.release_budget('2025-01').charge.value:.4f}, a quarterly one ρ = {policy.release_budget('2025-Q1').charge.value:.4f}"
)
for warning in policy_warnings(policy):
    st.warning(f"Risky setting in force: {warning}", icon="⚠️")
current = pl.DataFrame(
    {"Setting": list(EDITABLE.values()), "Key": list(EDITABLE), "Value": [str(flat[k]) for k in EDITABLE]}
)
ui.table(current, hide_index=True, width="stretch")

if saved := st.session_state.pop("policy_saved", None):
    st.success(saved[0])
    for warning in saved[1]:
        st.warning(f"Accepted with a recorded warning: {warning}", icon="⚠️")

st.subheader("Change a value")
key = st.selectbox("Setting", list(EDITABLE), format_func=lambda k: f"{EDITABLE[k]} ({k})", key="policy_key")
st.caption(f"Current value: `{flat.get(key, '')}`")
with st.form("policy_edit", clear_on_submit=False):
    value = st.text_input("New value", key="policy_value", placeholder=str(flat.get(key, "")))
    submitted = st.form_submit_button("Save change", type="primary")
if submitted:
    try:
        change = control.set_policy_value(me, key, value, customer_id=customer)
    except (PolicyError, ValueError) as exc:
        st.error(f"Not saved: {exc}")
    else:
        # Re-run so the table above shows the new value (it was drawn before the save).
        st.session_state["policy_saved"] = (
            f"Saved {change.key}: {change.old_value} → {change.new_value} (policy version "
            f"{change.policy_version}). It applies to future releases only.",
            change.warnings,
        )
        st.rerun()

st.subheader("Change history")
history = control.policy_history(me, customer)
if history.is_empty():
    st.info("No changes yet: the documented defaults apply.")
else:
    ui.table(history, hide_index=True, width="stretch")
