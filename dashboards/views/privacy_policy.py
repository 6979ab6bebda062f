"""Privacy officer: view and edit the release policy (default or per customer).

Each change is validated, recorded with who / when / old / new in the control store, and
applies to future releases only (a stored release keeps the policy version it was drawn under).
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import control, data, ui
from privacy.policy import PolicyError, policy_to_flat

me = ui.principal()
st.title("Release policy")

EDITABLE: dict[str, str] = {
    "k": "Minimum group size k (counts)",
    "k_scores": "Minimum group size for WHO-5 / satisfaction means",
    "z": "Suppression margin z (in noise standard deviations)",
    "rho_per_release": "ρ per release (zCDP)",
    "rho_cap_12m": "ρ cap over any 12 months",
    "accounting": "Accounting (zcdp or pure)",
    "epsilon_per_release": "ε per release (pure DP)",
    "delta": "δ used to report (ε, δ)",
    "max_contacts_per_month": "Contacts counted per employee and month",
    "max_services_per_period": "Services one employee counts towards per period",
    "max_topics_per_period": "Topics one employee counts towards per period",
    "granularity.engagement": "Granularity: engagement table",
    "granularity.wellbeing": "Granularity: wellbeing table",
    "granularity.services": "Granularity: services table",
    "granularity.topics": "Granularity: topics table",
}

customers = data.customers(me)
scope_label = st.selectbox("Scope", ["Default (all customers)"] + customers, key="policy_scope")
customer = None if scope_label.startswith("Default") else scope_label
policy, version = control.current_policy(customer)
flat = policy_to_flat(policy)

st.caption(f"Effective policy version {version} · annual ε at the cap: {policy.annual_epsilon():.2f} (δ = {policy.delta:g})")
current = pl.DataFrame(
    {"Setting": list(EDITABLE.values()), "Key": list(EDITABLE), "Value": [str(flat[k]) for k in EDITABLE]}
)
ui.table(current, hide_index=True, width="stretch")

st.subheader("Change a value")
with st.form("policy_edit", clear_on_submit=False):
    key = st.selectbox("Setting", list(EDITABLE), format_func=lambda k: f"{EDITABLE[k]} ({k})", key="policy_key")
    value = st.text_input("New value", key="policy_value", placeholder=str(flat.get(key, "")))
    submitted = st.form_submit_button("Save change", type="primary")
if submitted:
    try:
        change = control.set_policy_value(me, key, value, customer_id=customer)
    except (PolicyError, ValueError) as exc:
        st.error(f"Not saved: {exc}")
    else:
        st.success(f"Saved {change.key}: {change.old_value} → {change.new_value} (policy version "
                   f"{change.policy_version}). It applies to future releases only.")

st.subheader("Change history")
history = control.policy_history(me, customer)
if history.is_empty():
    st.info("No changes yet: the documented defaults apply.")
else:
    ui.table(history, hide_index=True, width="stretch")
