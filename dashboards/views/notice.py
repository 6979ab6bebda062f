"""Employees (no sign-in): a plain-language privacy notice per customer, generated from the live policy.

Link it as ``/notice?customer=<customer id>`` from intake forms. It shows only the policy
(public by design), never data, and does not list the customers.
"""

from __future__ import annotations

import re

import streamlit as st

from dashboards import control, data
from stores.connect import StoreBusy
from stores.notice import NoticeConfigError, NoticeDetails, load_notice_details
from stores.paths import home_paths

st.title("How your employer's wellbeing reports protect you")

customer = st.query_params.get("customer") or st.text_input(
    "Organisation code (from the link your provider gave you)", key="notice_customer"
)
if customer and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", customer):
    st.error("That organisation code is not valid. Use the link your provider gave you.")
    st.stop()

try:
    policy, version = control.current_policy(customer or None)
except StoreBusy:
    st.info("The privacy settings are being updated right now. Please reload this page in a minute.")
    st.stop()
retention = home_paths().retention_months
try:
    details = load_notice_details(home_paths().notice_file, customer or None)
except NoticeConfigError:
    details = NoticeDetails()  # a broken file must not take the notice down; the operator sees it in the CLI
try:
    drawn_under = data.published_policy_version(customer) if customer else None
except data.StoreUnavailable:
    drawn_under = None
cadence = {g: [t for t, v in policy.granularity.items() if v == g] for g in ("month", "quarter")}
monthly = ", ".join(cadence["month"]) or "none"
quarterly = ", ".join(cadence["quarter"])
strength = (
    "strong"
    if policy.epsilon_annual <= 2
    else "good"
    if policy.epsilon_annual <= 8
    else "moderate"
    if policy.epsilon_annual <= 10
    else "weak"
)

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
- Figures about small groups: a group is shown only when it clearly has more than **{policy.k} people**
  (**{policy.k_scores}** people with scores for wellbeing figures). Smaller teams are combined with others or
  shown as *hidden*.

#### How this is guaranteed
- Every figure is produced with **differential privacy**: a small, calibrated amount of random noise is added
  once, so the figures barely change whether or not any one person is included. Nobody — not your employer,
  not the provider's analysts — can tell from the reports whether you used the service.
- There is a fixed yearly limit on how much all reports together can reveal, set by the provider's privacy
  officer ({strength} protection by the usual measure: ε = {policy.epsilon_annual:g} per year). A report that
  would go over the limit is not produced.
- Reports are produced per month ({monthly}){" and per quarter (" + quarterly + ")" if quarterly else ""}.
- At most {policy.max_contacts_per_month} contacts per person and month are counted, so heavy use by one person
  cannot stand out.

#### How long data is kept
The provider's records used for these statistics are pseudonymised (your client number is replaced by a keyed
code), stored encrypted, and deleted after **{retention} months**. Published statistics contain no identifiers.

#### Who is responsible and your rights
- **Controller:** {details.controller}
- **Legal basis:** {details.legal_basis}
- **Data protection contact:** {details.dpo_contact}
- **Your rights:** {details.rights}

Using the service is voluntary and confidential.
"""
)
if drawn_under is not None and drawn_under != version:
    st.info(
        f"The figures published so far were produced under an earlier version of these settings (version "
        f"{drawn_under}); the settings above (version {version}) apply to future reports."
    )
st.caption(f"Generated from the live release policy (version {version}).")
