"""Employees (no sign-in): a plain-language privacy notice per customer, generated from the live policy.

Link it as ``/notice?customer=<customer id>`` from intake forms. It shows only the policy
(public by design), never data, and does not list the customers.
"""

from __future__ import annotations

import re

import streamlit as st

from dashboards import control
from stores.paths import home_paths

st.title("How your employer's wellbeing reports protect you")

customer = st.query_params.get("customer") or st.text_input(
    "Organisation code (from the link your provider gave you)", key="notice_customer"
)
if customer and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", customer):
    st.error("That organisation code is not valid. Use the link your provider gave you.")
    st.stop()

policy, version = control.current_policy(customer or None)
retention = home_paths().retention_months
cadence = {g: [t for t, v in policy.granularity.items() if v == g] for g in ("month", "quarter")}
monthly = ", ".join(cadence["month"]) or "none"
quarterly = ", ".join(cadence["quarter"])

st.markdown(
    f"""
{"This notice applies to **" + customer + "**." if customer else "This notice shows the standard settings."}

**Your employer never learns whether you used the service, and never sees your answers or scores.**
The wellbeing provider keeps your contacts confidential. Your employer receives only statistics about
groups of people, and those statistics are deliberately made approximate.

#### What your employer can see
- How many employees used the service in a month, the share of staff that this is, and the number of contacts —
  for the whole organisation and for departments, sites and role groups that are large enough.
- For groups of people who gave wellbeing scores, over a quarter: the share with low wellbeing, the share
  whose wellbeing improved, and average wellbeing (WHO-5) and satisfaction — never a person's score.
- Which services and topics are used, as group counts.

#### What your employer cannot see
- Your name, your identity or whether you personally used the service.
- Any individual answer, score, note or contact.
- Any figure about a group of fewer than **{policy.k} people** (**{policy.k_scores}** for wellbeing and
  satisfaction scores). Smaller teams are combined with others or shown as *hidden*.

#### How this is guaranteed
- Every figure is produced with **differential privacy**: calibrated random noise is added once, so the
  figures barely change whether or not any one person is included. Groups are hidden unless they clearly
  reach the minimum size (margin z = {policy.z:g}).
- The total privacy loss is capped: all reports about any 12 months together stay within
  **ε = {policy.epsilon_annual:g}** (δ = {policy.delta:g}) — the usual measure of differential privacy; smaller
  is more private. The yearly budget is split in advance over the reports of the year, and a report that
  would exceed it is refused.
- Reports are produced per month ({monthly}){" and per quarter (" + quarterly + ")" if quarterly else ""}.
- At most {policy.max_contacts_per_month} contacts per person and month are counted, so heavy use by one person cannot stand out.

#### How long data is kept
The provider's records used for these statistics are pseudonymised (your client number is replaced by a keyed
code), stored encrypted, and deleted after **{retention} months**. Published statistics contain no identifiers.

#### Your choices
Using the service is voluntary and confidential. Questions about this notice can go to the provider's privacy
officer or your data protection officer.
"""
)
st.caption(f"Generated from the live release policy (version {version}).")
