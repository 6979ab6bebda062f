"""Access-audit hooks for the dashboards: page views, downloads, sign-ins → :mod:`stores.audit`.

Page views and downloads are buffered and written in batches by one background thread (a
render never waits for the audit file); sign-in events are written at once (they also feed the
throttle). What is recorded: the event, the account name, role, customer, page and a short
detail (a file name). Never a data value; a typed user name that is not an account only as a
keyed hash (:func:`subject_ref`).

Pages offer downloads through :func:`download_button` (``st.download_button`` with a function that
makes the file, plus the principal and the page), which records the download when the file is made.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Any

import streamlit as st

from stores import audit
from stores.paths import home_paths
from stores.principal import Principal

_WRITERS: dict[str, audit.BatchWriter] = {}
_WRITERS_LOCK = threading.Lock()


def writer() -> audit.BatchWriter:
    """The process-wide batch writer of this installation's audit file."""
    path = home_paths().audit
    with _WRITERS_LOCK:
        w = _WRITERS.get(str(path))
        if w is None:
            w = _WRITERS[str(path)] = audit.BatchWriter(path)
        return w


def subject_ref(key: str, kind: str, value: str) -> str:
    """A keyed hash of a typed user name or a client address (the key never leaves the server)."""
    return hmac.new(key.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def event(
    name: str,
    principal: Principal | None = None,
    *,
    page: str | None = None,
    detail: str | None = None,
    username: str | None = None,
    subject: str | None = None,
) -> audit.AccessEvent:
    return audit.AccessEvent(
        name,
        username=principal.username if principal else username,
        role=principal.role if principal else None,
        customer_id=principal.customer_id if principal else None,
        page=page,
        detail=detail,
        subject_ref=subject,
    )


def record(e: audit.AccessEvent, *, now: bool = False) -> None:
    """Buffer ``e`` (or write it at once with ``now=True``). An audit write never breaks a page."""
    if now:
        try:
            audit.append(home_paths().audit, [e])
            return
        except Exception:  # file busy beyond the retry window: keep it in the batch instead
            pass
    writer().record(e)


def page_view(principal: Principal, page: str) -> None:
    """Record a view of ``page`` once per page change in this session (not on every widget rerun)."""
    if st.session_state.get("_wb_audit_page") == page:
        return
    st.session_state["_wb_audit_page"] = page
    record(event("page_view", principal, page=page))


def download_button(
    label: str, data: Callable[[], str | bytes], file_name: str, *, principal: Principal, page: str, **kwargs: Any
) -> bool:
    """``st.download_button`` whose file is made only when the user clicks, and recorded then.

    ``data`` is a function without arguments that returns the file's contents (bind the frames
    it needs as default arguments). Streamlit runs it on the click, on its own thread, so a render
    no longer formats a CSV nobody downloads (about a tenth of a render's CPU under load). The
    download (who, page, file name) is recorded when the file is made: that is the moment data
    leaves the dashboard.
    """
    if "on_click" in kwargs:
        raise TypeError("audit_hooks.download_button records the download itself; do not pass on_click")
    if not callable(data):
        raise TypeError("pass a function that returns the file's contents (it runs when the user clicks)")

    def _make() -> str | bytes:
        record(event("download", principal, page=page, detail=file_name))
        return data()

    return bool(st.download_button(label, _make, file_name=file_name, on_click="ignore", **kwargs))
