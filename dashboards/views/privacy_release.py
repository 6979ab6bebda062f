"""Privacy officer: request the due releases of a customer; the pipeline carries them out.

The dashboard holds no raw-store key, so it only records a request in the control store;
the pipeline's sensor picks it up, releases (or refuses over budget) and sets the status.
The budget each release will spend is shown before the request is made.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboards import control, data, ui
from privacy.budget import Rho, fits_under_cap, release_cost
from privacy.periods import max_window_spend, month_range, parse_period, period_of_month
from privacy.policy import PolicyError

me = ui.principal()
st.title("Releases")

customers = data.customers(me)
if not customers:
    st.info("No customers are known yet: the pipeline publishes a customer's public headcount with its first release.")
    st.stop()
wanted = st.query_params.get("customer")
customer = st.selectbox(
    "Customer", customers, index=customers.index(wanted) if wanted in customers else 0, key="release_customer"
)
policy, version = control.current_policy(customer)
released = data.releases(me, customer)
ledger = data.budget_ledger(me, customer)

today = date.today()
last_complete = f"{today.year - (today.month == 1):04d}-{(today.month - 2) % 12 + 1:02d}"
months_released = sorted(p for p in released["period"].to_list() if "Q" not in p)
if months_released:
    start = months_released[-1]
    due = [m for m in month_range(start, last_complete) if m > start] if start < last_complete else []
else:
    first = st.text_input("First month to release (YYYY-MM)", value=last_complete, key="release_first")
    try:
        due = month_range(first, last_complete) if first <= last_complete else []
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
# Quarterly tables (wellbeing by default) are released per calendar quarter once its last month is due.
done = set(released["period"].to_list())
if policy.tables_for("quarter"):
    quarters = dict.fromkeys(period_of_month(m, "quarter") for m in [*months_released, *due])
    due += [q for q in quarters if q not in done and parse_period(q).last_month <= last_complete]
due = sorted(due, key=lambda p: (parse_period(p).last_month, parse_period(p).n_months))[:24]

st.subheader("Due releases and the budget they will spend")
entries = list(zip(ledger["period"].to_list(), ledger["rho"].to_list()))
rows = []
for period in due:
    try:
        cost = release_cost(policy, period)
    except (ValueError, PolicyError) as exc:
        rows.append({"Period": period, "ρ": None, "ε": None, "Window after": None, "Fits the cap": str(exc)})
        continue
    spent = max_window_spend(entries, period)
    fits = fits_under_cap(Rho(spent), Rho(cost.rho), policy.cap)
    rows.append(
        {
            "Period": period,
            "ρ": round(cost.rho, 4),
            "ε": round(cost.epsilon, 3),
            "Window after": round(spent + cost.rho, 4),
            "Fits the cap": "yes" if fits else "no — would be refused",
        }
    )
    if fits:
        entries.append((period, cost.rho))
if not rows:
    st.success(f"Nothing is due for {customer}: every month up to {last_complete} is released.")
else:
    table = pl.DataFrame(rows)
    ui.table(table, hide_index=True, width="stretch")
    total = sum(r["ρ"] or 0 for r in rows)
    st.caption(
        f"Policy version {version}; annual ε {policy.epsilon_annual:g} at δ = {policy.delta:g}, i.e. "
        f"cap ρ = {policy.cap.value:.3f} over any 12 months. "
        f"These {len(rows)} releases spend ρ = {total:.3f} in total."
    )
    picked = st.multiselect("Periods to request", due, default=due, key="release_periods")
    if st.button("Request these releases", type="primary", key="release_request", disabled=not picked):
        try:
            request_id = control.request_release(me, customer, picked)
        except (ValueError, PolicyError) as exc:
            st.error(f"Not requested: {exc}")
        else:
            st.success(f"Request {request_id[:8]} recorded. The pipeline will carry it out; its status shows below.")

st.subheader("Requests")
requests = control.release_requests(me, customer)
if requests.is_empty():
    st.info("No release requests for this customer yet.")
else:
    ui.table(
        requests.select("requested_at", "status", "periods", "requested_by", "message", "updated_at", "request_id"),
        hide_index=True,
        width="stretch",
    )
    if st.button("Refresh status", key="release_refresh"):
        st.rerun()
