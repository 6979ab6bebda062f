"""Sign-in, session cookie, throttle and principal resolution for the dashboards.

Two ways to sign in:

* **Offline (default):** a user name and password form checked against ``$WELLBEING_HOME/auth.yaml``
  (bcrypt hashes, created with ``wellbeing users add`` / ``wellbeing users demo``; the same format
  streamlit-authenticator reads). A successful sign-in issues a signed session cookie
  (:mod:`dashboards.session_cookie`), so a reload or a deep link stays signed in.
* **OIDC (option):** when ``.streamlit/secrets.toml`` has an ``[auth]`` section (``redirect_uri``,
  ``cookie_secret``, ``client_id``, ``client_secret``, ``server_metadata_url``) and
  ``streamlit[auth]`` (Authlib) is installed, the sign-in page offers ``st.login()``. The signed-in
  e-mail (``st.user.email``) is then mapped to an account in ``auth.yaml`` by its ``email`` field,
  which still carries the role and the customer binding; an unknown e-mail gets no access.

Repeated failures lock the typed user name and the client address out for exponentially longer
(:mod:`stores.throttle`, persisted); the messages are the same whether or not the account exists,
and an unknown user name costs the same bcrypt check. Every sign-in, failure, lock-out and
sign-out is recorded in the access audit (:mod:`dashboards.audit_hooks`).

Privacy reason: role and customer come from the credentials file on the server on every run,
never from the browser (the cookie names only the user), so a user cannot widen their own scope.
"""

from __future__ import annotations

import contextlib
import math
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import bcrypt
import streamlit as st

from dashboards import audit_hooks, session_cookie
from stores import throttle
from stores.accounts import load_accounts, principal_for
from stores.paths import home_paths
from stores.principal import Principal

FAILED_LOGIN = "Username or password is incorrect."
LOCKED = "Too many failed sign-ins. Try again in {wait}."
UNAVAILABLE = "Sign-in is unavailable for a moment. Try again shortly."
COOKIE_PENDING = "_wb_cookie_pending"
AUTH_KEYS = ("authentication_status", "username", "name")


@lru_cache(maxsize=8)
def _accounts(path: str, mtime_ns: int) -> dict[str, Any]:
    return load_accounts(Path(path))


def accounts() -> dict[str, Any]:
    """The credentials file, re-read whenever it changes."""
    path = home_paths().auth_file
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        mtime = 0
    return _accounts(str(path), mtime)


def _cookie_key(config: dict[str, Any]) -> str:
    return str(config["cookie"]["key"])


def _cookie_ttl(config: dict[str, Any]) -> int:
    try:
        return max(60, int(float(config["cookie"].get("expiry_days", 1)) * 86400))
    except (TypeError, ValueError):
        return 86400


@lru_cache(maxsize=1)
def _dummy_hash() -> bytes:
    """A bcrypt hash of nothing, checked for unknown user names so that they take as long as known ones."""
    return bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(12))


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def _cookie_value() -> str | None:
    try:
        return st.context.cookies.get(session_cookie.COOKIE_NAME)
    except Exception:  # no client context (bare script run)
        return None


def _client_address() -> str:
    try:
        ip = st.context.ip_address
    except Exception:
        return "unknown"
    return ip if isinstance(ip, str) and ip else "unknown"


def _secure_context() -> bool:
    try:
        return str(st.context.url or "").startswith("https://")
    except Exception:
        return False


def _resume_from_cookie(config: dict[str, Any]) -> str | None:
    """The user a valid session cookie names (see :mod:`dashboards.session_cookie`), else None."""
    claims = session_cookie.decode(_cookie_value(), _cookie_key(config))
    if claims is None:
        return None
    username = str(claims["sub"])
    account = config["credentials"]["usernames"].get(username)
    if account is None or session_cookie.fingerprint(account) != claims["fp"]:
        return None  # deleted user, or password / role / customer changed since
    try:
        if claims["t"] < throttle.sessions_valid_from(home_paths().audit, username):
            return None  # signed out since
    except Exception:  # audit file busy: do not resume on an unverifiable cookie
        return None
    return username


def _sign_in_session(username: str, name: str | None = None) -> None:
    st.session_state["authentication_status"] = True
    st.session_state["username"] = username
    st.session_state["name"] = name or username


def resolve_principal() -> Principal | None:
    """The signed-in principal of this session, or None.

    Order: OIDC user (if configured) → this session's sign-in → a valid session cookie (a reload,
    a new tab, a deep link). The principal is always rebuilt from ``auth.yaml``.
    """
    config = accounts()
    if oidc_configured() and st.user.get("is_logged_in", False):
        principal = principal_for(config, email=str(st.user.get("email") or ""))
        if principal is not None and not st.session_state.get("_wb_sso_audited"):
            st.session_state["_wb_sso_audited"] = True
            audit_hooks.record(audit_hooks.event("sign_in", principal, page="login", detail="sso"))
        return principal
    if st.session_state.get("authentication_status") and st.session_state.get("username"):
        return principal_for(config, str(st.session_state["username"]))
    if st.session_state.get("_wb_cookie_checked"):
        return None
    st.session_state["_wb_cookie_checked"] = True  # once per session: a bad cookie is not re-read on every run
    username = _resume_from_cookie(config)
    if username is None:
        return None
    principal = principal_for(config, username)
    if principal is not None:
        _sign_in_session(username, config["credentials"]["usernames"][username].get("name"))
        audit_hooks.record(audit_hooks.event("session_resumed", principal))
    return principal


def _wait_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def attempt_sign_in(username: str, password: str) -> Principal | None:
    """Check one sign-in; shows the outcome. Returns the principal on success (the caller reruns)."""
    config = accounts()
    key = _cookie_key(config)
    typed = (username or "").strip()
    users = config["credentials"]["usernames"]
    account = users.get(typed)
    known = account is not None
    account_ref = audit_hooks.subject_ref(key, "account", typed.lower())
    client_ref = audit_hooks.subject_ref(key, "client", _client_address())
    keys = [("account", account_ref), ("client", client_ref)]
    store = home_paths().audit
    # A name that is not an account is recorded only as its keyed hash.
    who_name, who_ref = (typed, None) if known else (None, account_ref)
    try:
        wait = throttle.locked_for(store, keys)
    except Exception:
        st.error(UNAVAILABLE)
        return None
    if wait > 0:
        audit_hooks.record(
            audit_hooks.event("sign_in_locked", page="login", username=who_name, subject=who_ref), now=True
        )
        st.error(LOCKED.format(wait=_wait_text(wait)))
        return None
    stored = str(account.get("password") or "") if account else ""
    try:
        ok = bcrypt.checkpw(
            (password or "").encode()[:72], stored.encode() if stored.startswith("$2") else _dummy_hash()
        )
    except ValueError:  # malformed hash in auth.yaml
        ok = False
    ok = ok and stored.startswith("$2")
    principal = principal_for(config, typed) if (ok and known) else None
    if principal is None:
        try:
            lock = throttle.record_failure(store, keys)
        except Exception:
            lock = 0.0
        detail = "no valid role" if (ok and known) else None
        audit_hooks.record(
            audit_hooks.event("sign_in_failed", page="login", detail=detail, username=who_name, subject=who_ref),
            now=True,
        )
        if ok and known:
            st.error("This account has no valid role. Ask a privacy officer to fix it with `wellbeing users add`.")
        else:
            st.error(FAILED_LOGIN)
        if lock > 0:
            st.error(LOCKED.format(wait=_wait_text(lock)))
        return None
    with contextlib.suppress(Exception):
        throttle.record_success(store, account_ref)
    assert account is not None
    _sign_in_session(typed, account.get("name"))
    st.session_state[COOKIE_PENDING] = session_cookie.issue(
        typed, session_cookie.fingerprint(account), key, ttl_seconds=_cookie_ttl(config)
    )
    audit_hooks.record(audit_hooks.event("sign_in", principal, page="login"), now=True)
    return principal


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
    with st.form("login"):
        username = st.text_input("Username", key="login_username", autocomplete="username")
        password = st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
        submitted = st.form_submit_button("Login", type="primary")
    if submitted and attempt_sign_in(username, password) is not None:
        st.rerun()  # the same URL now resolves to the user's page (deep links keep their path)
    st.page_link("views/notice.py", label="Employees: read the privacy notice", icon=":material/policy:")


def write_cookie_if_pending() -> None:
    """After a sign-in, the first signed-in render writes the session cookie (a zero-height script)."""
    token = st.session_state.pop(COOKIE_PENDING, None)
    if token:
        ttl = _cookie_ttl(accounts())
        with st.sidebar:
            st.html(
                session_cookie.write_script(token, max_age=ttl, secure=_secure_context()), unsafe_allow_javascript=True
            )


def _sign_out(principal: Principal) -> None:
    with contextlib.suppress(Exception):
        throttle.revoke_sessions(home_paths().audit, principal.username, int(time.time() * 1000) + 1)
    audit_hooks.record(audit_hooks.event("sign_out", principal), now=True)
    for k in (*AUTH_KEYS, COOKIE_PENDING, "principal", "_wb_audit_page"):
        st.session_state.pop(k, None)
    st.session_state["_wb_cookie_checked"] = True  # this session does not resume from the (revoked) cookie
    st.session_state["_wb_clear_cookie"] = True


def clear_cookie_if_signed_out() -> None:
    """After a sign-out, the sign-in page clears the cookie in the browser."""
    if st.session_state.pop("_wb_clear_cookie", False):
        st.html(session_cookie.write_script(None, max_age=0, secure=_secure_context()), unsafe_allow_javascript=True)


def logout_button(principal: Principal) -> None:
    """Sign-out control in the sidebar."""
    if oidc_configured() and st.user.get("is_logged_in", False):
        if st.sidebar.button("Sign out", key="oidc_logout"):
            audit_hooks.record(audit_hooks.event("sign_out", principal), now=True)
            st.logout()
        return
    if st.sidebar.button("Sign out", key="signout"):
        _sign_out(principal)
        st.rerun()
