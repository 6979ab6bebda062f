"""Privacy officer: the access audit (who signed in, viewed which page, downloaded what, when), with export.

The log is append-only and hash-chained (``stores.audit``); the page says whether the chain is
intact. It holds account names, roles, customers, pages and file names, never a data value; a
user name typed at sign-in that is not an account appears only as a keyed hash.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import polars as pl
import streamlit as st

from dashboards import audit_hooks, ui
from stores import audit
from stores.connect import StoreBusy
from stores.exports import to_csv
from stores.paths import home_paths

EVENT_LABELS = {
    "sign_in": "Signed in", "sign_in_failed": "Failed sign-in", "sign_in_locked": "Sign-in refused (locked out)",
    "sign_out": "Signed out", "session_resumed": "Resumed session (cookie)", "page_view": "Viewed page",
    "download": "Downloaded", "not_available": "Page not available for role",
}  # fmt: skip
MAX_SHOWN = 5000

me = ui.principal()
st.title("Access log")
if me.role != "privacy_officer":
    st.info("This page is not available for your role.")
    st.stop()
st.caption(
    "Every sign-in, failed sign-in, page view and download on these dashboards (times in UTC). "
    "No figures are recorded here, only who opened what."
)

path = home_paths().audit
today = datetime.now(UTC).date()
c1, c2, c3 = st.columns([2, 2, 1])
with c1:
    span = st.date_input("Period", value=(today - timedelta(days=30), today), max_value=today, key="access_period")
with c2:
    chosen = st.multiselect(
        "Events",
        list(EVENT_LABELS),
        format_func=EVENT_LABELS.__getitem__,
        key="access_events",
        placeholder="All events",
    )
with c3:
    user = st.text_input("Account", key="access_user", placeholder="any").strip() or None

start, end = span if isinstance(span, tuple) and len(span) == 2 else (today - timedelta(days=30), today)
assert isinstance(start, date) and isinstance(end, date)
try:
    with audit.audit_connection(path) as con:  # one open for the flush, the selection and the check
        audit_hooks.writer().flush(con)  # include the views buffered in the last second
        log = audit.read_on(
            con,
            since=datetime.combine(start, time.min),
            until=datetime.combine(end + timedelta(days=1), time.min),
            events=chosen or None,
            username=user,
        )
        check = audit.verify_on(con)
except StoreBusy:
    st.warning("The access log is busy right now. Reload the page in a moment.")
    st.stop()

if check.ok:
    st.success(f"Log intact: the hash chain of all {check.rows:,} entries verifies.")
else:
    st.error(
        f"The log has been altered at entry {check.first_bad_seq}: {check.reason}. "
        "Keep an exported copy and investigate."
    )

if log.is_empty():
    st.info("No entries for this selection.")
    st.stop()

shown = log.select(
    pl.col("seq").alias("Entry"),
    pl.col("occurred_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("When (UTC)"),
    pl.col("event").replace_strict(EVENT_LABELS, default=pl.col("event")).alias("Event"),
    pl.col("username").fill_null("(not an account)").alias("Account"),
    pl.col("role").fill_null("").alias("Role"),
    pl.col("customer_id").fill_null("").alias("Customer"),
    pl.col("page").fill_null("").alias("Page"),
    pl.col("detail").fill_null("").alias("Detail"),
    pl.col("subject_ref").fill_null("").str.slice(0, 12).alias("Typed name (keyed hash)"),
).reverse()
st.metric("Entries in this selection", f"{log.height:,}")
if shown.height > MAX_SHOWN:
    st.caption(f"Showing the latest {MAX_SHOWN:,} entries; the download holds all {log.height:,}.")
    shown = shown.head(MAX_SHOWN)
ui.table(shown, hide_index=True, width="stretch", height=min(600, 36 + 35 * shown.height))

export = log.select(
    pl.col("seq").alias("entry"),
    pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("occurred_at_utc"),
    "event",
    "username",
    "role",
    "customer_id",
    "page",
    "detail",
    "subject_ref",
    "prev_hash",
    "row_hash",
)
audit_hooks.download_button(
    "Download this selection (CSV, with the hash chain)",
    lambda export=export: to_csv(export),
    f"access_log_{start.isoformat()}_{end.isoformat()}.csv",
    principal=me,
    page="privacy_access",
    mime="text/csv",
)
st.caption("In the download, a text value starting with = + - @ gets a leading ' so that spreadsheets do not run it.")
