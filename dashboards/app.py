"""Entrypoint and router: sign in → resolve the role → register that role's pages → run.

Start with ``wellbeing dashboards`` (or ``streamlit run dashboards/app.py``). A user sees and can
open only the pages of their role. The URL paths of every other page are registered as hidden
pages that only say "not available for your role" (no data is read), so a link to another
role's page gets a plain answer instead of a silent redirect. Before sign-in, every page's URL
shows the sign-in form, and after signing in the same URL opens that page (deep links work).
The employee privacy notice needs no sign-in.

Every page view is recorded in the access audit (:mod:`dashboards.audit_hooks`); expected
failures (published store being replaced, control store busy) are plain messages.
"""

from __future__ import annotations

import duckdb
import streamlit as st

from dashboards import audit_hooks, auth
from dashboards.data import StoreUnavailable
from stores.accounts import AccountError
from stores.connect import StoreBusy
from stores.principal import ROLE_LABELS, Principal

st.set_page_config(page_title="Wellbeing insights", page_icon="🌱", layout="wide")

# role -> (script, title, icon); scripts are relative to this file.
ROLE_PAGES: dict[str, list[tuple[str, str, str]]] = {
    "hr": [
        ("views/hr_overview.py", "Overview", ":material/dashboard:"),
        ("views/hr_trends.py", "Trends", ":material/show_chart:"),
        ("views/hr_breakdown.py", "Breakdown", ":material/table_chart:"),
    ],
    "provider": [
        ("views/provider_uptake.py", "Uptake across customers", ":material/groups:"),
    ],
    "privacy_officer": [
        ("views/privacy_budget.py", "Budget", ":material/account_balance:"),
        ("views/privacy_policy.py", "Policy", ":material/tune:"),
        ("views/privacy_whatif.py", "What-if tuner", ":material/science:"),
        ("views/privacy_release.py", "Releases", ":material/publish:"),
        ("views/privacy_access.py", "Access log", ":material/history:"),
    ],
}
NOTICE = ("views/notice.py", "Privacy notice", ":material/policy:")
NOT_AVAILABLE = "This page is not available for your role."
BUSY_PUBLISHED = "The published figures are being updated right now. Reload the page in a moment."
BUSY_CONTROL = "The settings store is busy with another task right now. Reload the page in a moment."


def url_path(script: str) -> str:
    """The URL path Streamlit gives a page file: ``views/hr_trends.py`` → ``hr_trends``."""
    return script.rsplit("/", 1)[-1].removesuffix(".py")


def _page(spec: tuple[str, str, str], *, default: bool = False) -> st.Page:
    path, title, icon = spec
    return st.Page(path, title=title, icon=icon, default=default)


def _not_available() -> None:
    st.title("Not available")
    st.info(NOT_AVAILABLE)


def _placeholders(exclude: set[str], target: object) -> list[st.Page]:
    """Hidden pages at the URL paths of every role page not in ``exclude``, all running ``target``."""
    paths = sorted({url_path(s[0]) for specs in ROLE_PAGES.values() for s in specs} - exclude)
    return [st.Page(target, title=p, url_path=p, visibility="hidden") for p in paths]  # type: ignore[arg-type]


def _signed_out() -> None:
    st.session_state.pop("principal", None)
    auth.clear_cookie_if_signed_out()
    login = st.Page(auth.login_page, title="Sign in", icon=":material/login:", url_path="login", default=True)
    page = st.navigation([login, _page(NOTICE), *_placeholders(set(), auth.login_page)])
    _run(page)


def _signed_in(principal: Principal) -> None:
    st.session_state["principal"] = principal
    with st.sidebar:
        who = ROLE_LABELS[principal.role]
        scope = f" · {principal.customer_id}" if principal.customer_id else ""
        st.caption(f"Signed in as **{principal.username}** ({who}{scope})")
    auth.logout_button(principal)
    specs = ROLE_PAGES[principal.role]
    own = {url_path(s[0]) for s in specs}
    pages = {
        ROLE_LABELS[principal.role]: [_page(s, default=(i == 0)) for i, s in enumerate(specs)],
        "Employees": [_page(NOTICE), *_placeholders(own, _not_available)],
    }
    first = pages[ROLE_LABELS[principal.role]][0]
    # A signed-in user on /login (the sign-in rerun from the home page, a bookmark) goes to the first page.
    pages["Employees"].append(
        st.Page(lambda: st.switch_page(first), title="Sign in", url_path="login", visibility="hidden")
    )
    page = st.navigation(pages)
    if page.url_path != "login":  # (that run only switches page: nothing it sends would stay on screen)
        auth.write_cookie_if_pending()
        shown = page.url_path or url_path(specs[0][0])
        if shown in own or shown == url_path(NOTICE[0]):
            audit_hooks.page_view(principal, shown)
        else:  # another role's URL: recorded as an attempt, nothing of that page runs
            audit_hooks.record(audit_hooks.event("not_available", principal, page=shown))
    _run(page)


def _run(page: st.Page) -> None:
    try:
        page.run()
    except StoreUnavailable:
        st.warning(BUSY_PUBLISHED)
    except StoreBusy:
        st.warning(BUSY_CONTROL)
    except (duckdb.IOException, duckdb.ConnectionException, duckdb.TransactionException):
        # A file being swapped or locked under a reader: expected, transient, never a traceback.
        st.warning(BUSY_PUBLISHED)


def main() -> None:
    try:
        principal = auth.resolve_principal()
    except AccountError:
        st.error(
            "The dashboard account file cannot be read. An administrator can recreate it with `wellbeing users add`."
        )
        return
    if principal is None:
        _signed_out()
    else:
        _signed_in(principal)


main()
