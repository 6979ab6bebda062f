"""Sign-in and principal resolution for the dashboards.

Two ways to sign in:

* **Offline (default):** streamlit-authenticator against ``$WELLBEING_HOME/auth.yaml`` (bcrypt
  hashes, created with ``wellbeing users add`` / ``wellbeing users demo``).
* **OIDC (option):** when ``.streamlit/secrets.toml`` has an ``[auth]`` section (``redirect_uri``,
  ``cookie_secret``, ``client_id``, ``client_secret``, ``server_metadata_url``) and
  ``streamlit[auth]`` (Authlib) is installed, the sign-in page offers ``st.login()``. The signed-in
  e-mail (``st.user.email``) is then mapped to an account in ``auth.yaml`` by its ``email`` field,
  which still carries the role and the customer binding; an unknown e-mail gets no access.

Privacy reason: role and customer come from the credentials file on the server on every run,
never from the browser, so a user cannot widen their own scope.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import streamlit as st
import streamlit_authenticator as stauth

from stores.accounts import credentials_for_authenticator, load_accounts, principal_for
from stores.paths import home_paths
from stores.principal import Principal

FAILED_LOGIN = "Username or password is incorrect."


@lru_cache(maxsize=8)
def _accounts(path: str, mtime_ns: int) -> dict[str, Any]:
    from pathlib import Path

    return load_accounts(Path(path))


def accounts() -> dict[str, Any]:
    """The credentials file, re-read whenever it changes."""
    path = home_paths().auth_file
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        mtime = 0
    return _accounts(str(path), mtime)


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def resolve_principal() -> Principal | None:
    """The signed-in principal of this session, or None."""
    config = accounts()
    if oidc_configured() and st.user.get("is_logged_in", False):
        return principal_for(config, email=str(st.user.get("email") or ""))
    if st.session_state.get("authentication_status") and st.session_state.get("username"):
        return principal_for(config, str(st.session_state["username"]))
    return None


def _authenticator() -> stauth.Authenticate:
    config = accounts()
    cookie = config["cookie"]
    return stauth.Authenticate(
        credentials_for_authenticator(config),
        cookie_name=str(cookie["name"]),
        cookie_key=str(cookie["key"]),
        cookie_expiry_days=float(cookie.get("expiry_days", 1)),
        auto_hash=False,
    )


def login_page() -> None:
    """The sign-in page (a function page registered only while nobody is signed in)."""
    st.title("Wellbeing insights")
    st.caption("Anonymised, aggregate figures about the wellbeing service. Sign in with your account.")
    if oidc_configured():
        if st.button("Sign in with your organisation (SSO)", key="oidc_login", type="primary"):
            st.login()
        if st.user.get("is_logged_in", False) and resolve_principal() is None:
            st.error("Your organisation account has no access to these dashboards. Ask a privacy officer.")
        st.divider()
    if not accounts()["credentials"]["usernames"]:
        st.warning("No dashboard accounts exist yet. Create one with `wellbeing users add` or `wellbeing users demo`.")
    _authenticator().login(location="main", key="login")
    status = st.session_state.get("authentication_status")
    if status is False:
        st.error(FAILED_LOGIN)
    elif status and resolve_principal() is None:
        st.error("This account has no valid role. Ask a privacy officer to fix it with `wellbeing users add`.")
    elif status:
        st.rerun()
    st.page_link("views/notice.py", label="Employees: read the privacy notice", icon=":material/policy:")


def logout_button() -> None:
    """Sign-out control in the sidebar."""
    if oidc_configured() and st.user.get("is_logged_in", False):
        if st.sidebar.button("Sign out", key="oidc_logout"):
            st.logout()
        return
    if st.session_state.get("authentication_status"):
        _authenticator().logout(button_name="Sign out", location="sidebar", key="signout")
