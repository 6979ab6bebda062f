"""Entrypoint and router: sign in → resolve the role → register only that role's pages → run.

Start with ``wellbeing dashboards`` (or ``streamlit run dashboards/app.py``). A user sees only
the pages of their role; pages of another role are not registered at all, so they cannot be
reached by URL or ``switch_page``. The employee privacy notice needs no sign-in.
"""

from __future__ import annotations

import streamlit as st

from dashboards import auth
from dashboards.data import StoreUnavailable
from stores.connect import StoreBusy
from stores.principal import ROLE_LABELS

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
    ],
}
NOTICE = ("views/notice.py", "Privacy notice", ":material/policy:")


def _page(spec: tuple[str, str, str], *, default: bool = False) -> st.Page:
    path, title, icon = spec
    return st.Page(path, title=title, icon=icon, default=default)


def main() -> None:
    principal = auth.resolve_principal()
    if principal is None:
        st.session_state.pop("principal", None)
        login = st.Page(auth.login_page, title="Sign in", icon=":material/login:", url_path="login", default=True)
        st.navigation([login, _page(NOTICE)]).run()
        return
    st.session_state["principal"] = principal
    with st.sidebar:
        who = ROLE_LABELS[principal.role]
        scope = f" · {principal.customer_id}" if principal.customer_id else ""
        st.caption(f"Signed in as **{principal.username}** ({who}{scope})")
    auth.logout_button()
    specs = ROLE_PAGES[principal.role]
    pages = {
        ROLE_LABELS[principal.role]: [_page(s, default=(i == 0)) for i, s in enumerate(specs)],
        "Employees": [_page(NOTICE)],
    }
    try:
        st.navigation(pages).run()
    except StoreUnavailable:
        st.warning("The published figures are being updated right now. Reload the page in a moment.")
    except StoreBusy:
        st.warning("The settings store is busy with another task right now. Reload the page in a moment.")


main()
