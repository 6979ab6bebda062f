"""Sign-in that holds and resists guessing: session cookie, throttle, revocation, audit of sign-ins (AppTest level).

The real-server behaviour (reload over a new websocket, deep links, another role's URL) is in
``test_auth_server.py``.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from dash_helpers import APP, PASSWORDS
from streamlit.testing.v1 import AppTest

from dashboards import auth, session_cookie
from stores import audit, throttle
from stores.accounts import load_accounts, save_accounts


def _login(username: str, password: str, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _cookie_script(at: AppTest) -> str:
    return "\n".join(str(getattr(el, "proto", el)) for el in at.get("html"))


def _token_from(at: AppTest) -> str:
    text = _cookie_script(at)
    assert session_cookie.COOKIE_NAME + "=" in text, "no cookie written after sign-in"
    return text.split(session_cookie.COOKIE_NAME + "=", 1)[1].split(";", 1)[0]


def _with_cookie(monkeypatch: pytest.MonkeyPatch, token: str | None) -> AppTest:
    monkeypatch.setattr(auth, "_cookie_value", lambda: token)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def _signed_in_as(at: AppTest) -> str | None:
    p = at.session_state.get("principal", None)
    return p.username if p else None


def test_sign_in_writes_a_session_cookie_that_signs_a_new_session_in(dash_home, monkeypatch) -> None:
    at = _login("hr_acme", PASSWORDS["hr_acme"])
    assert [t.value for t in at.title] == ["Overview"]
    token = _token_from(at)
    assert "SameSite=Strict" in _cookie_script(at)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "hr_acme" and "role" not in claims and "customer_id" not in claims
    again = _with_cookie(monkeypatch, token)  # a reload: a new session that only has the cookie
    assert _signed_in_as(again) == "hr_acme"
    assert [t.value for t in again.title] == ["Overview"]


def _forged_none(username: str) -> str:
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': username, 'aud': session_cookie.AUDIENCE, 'iat': now, 't': now * 1000, 'exp': now + 3600, 'fp': 'x'})}."


@pytest.mark.parametrize("kind", ["alg_none", "wrong_key", "expired", "garbage", "hs512_same_key"])
def test_forged_or_stale_cookies_show_the_sign_in_page(dash_home, monkeypatch, kind: str) -> None:
    config = load_accounts(dash_home / "auth.yaml")
    key = str(config["cookie"]["key"])
    fp = session_cookie.fingerprint(config["credentials"]["usernames"]["privacy"])
    now = int(time.time())
    claims = {"sub": "privacy", "fp": fp, "aud": session_cookie.AUDIENCE, "iat": now, "t": now * 1000, "exp": now + 600}
    token = {
        "alg_none": _forged_none("privacy"),
        "wrong_key": jwt.encode(claims, "not-the-key" * 4, algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 10}, key, algorithm="HS256"),
        "garbage": "a.b.c",
        "hs512_same_key": jwt.encode(claims, key, algorithm="HS512"),
    }[kind]
    at = _with_cookie(monkeypatch, token)
    assert _signed_in_as(at) is None
    assert at.text_input(key="login_password") is not None
    assert len(at.metric) == 0


def test_a_deleted_users_valid_cookie_shows_the_sign_in_page(dash_home, monkeypatch) -> None:
    token = _token_from(_login("provider", PASSWORDS["provider"]))
    config = load_accounts(dash_home / "auth.yaml")
    del config["credentials"]["usernames"]["provider"]
    save_accounts(dash_home / "auth.yaml", config)
    at = _with_cookie(monkeypatch, token)
    assert _signed_in_as(at) is None
    assert at.text_input(key="login_password") is not None


def test_a_changed_password_or_role_invalidates_old_cookies(dash_home, monkeypatch) -> None:
    from stores.accounts import add_user

    token = _token_from(_login("hr_globex", PASSWORDS["hr_globex"]))
    add_user(dash_home / "auth.yaml", "hr_globex", "a-new-password-9", "hr", "globex")
    assert _signed_in_as(_with_cookie(monkeypatch, token)) is None


def test_sign_out_revokes_the_cookie_and_clears_it(dash_home, monkeypatch) -> None:
    at = _login("privacy", PASSWORDS["privacy"])
    token = _token_from(at)
    at.sidebar.button(key="signout").click().run()
    assert not at.exception
    assert _signed_in_as(at) is None
    assert "Max-Age=0" in _cookie_script(at)
    assert _signed_in_as(_with_cookie(monkeypatch, token)) is None  # a copied cookie no longer works
    # signing in again issues a cookie that works
    fresh = _token_from(_login("privacy", PASSWORDS["privacy"]))
    assert _signed_in_as(_with_cookie(monkeypatch, fresh)) == "privacy"


def test_repeated_failures_lock_the_account_out_persistently_and_the_same_for_unknown_names(dash_home) -> None:
    seen: dict[str, list[list[str]]] = {}
    for name in ("hr_acme", "no_such_user"):
        at = AppTest.from_file(str(APP), default_timeout=30)
        seen[name] = []
        for _ in range(7):
            at = _login(name, "wrong-password-x", at)
            seen[name].append(_errors(at))

    # identical answers whether or not the account exists (only the wait can differ by a second)
    def shape(errs: list[list[str]]) -> list[list[str]]:
        return [[e.split(" in ")[0] for e in row] for row in errs]

    assert shape(seen["hr_acme"]) == shape(seen["no_such_user"])
    assert seen["hr_acme"][0] == [auth.FAILED_LOGIN]
    assert any("Too many failed sign-ins" in e for e in seen["hr_acme"][-1])
    # locked: even the right password is refused, in a new session (state is in the audit file)
    at = _login("hr_acme", PASSWORDS["hr_acme"])
    assert _signed_in_as(at) is None
    assert any("Too many failed sign-ins" in e for e in _errors(at))
    # another account from the same client is not locked yet (client allows more failures)
    ok = _login("hr_globex", PASSWORDS["hr_globex"])
    assert _signed_in_as(ok) == "hr_globex"


def test_lockout_doubles_and_is_capped() -> None:
    rule = throttle.Rule(free=5, base=30, cap=900)
    assert [rule.lock_seconds(n) for n in range(4, 12)] == [0, 0, 30, 60, 120, 240, 480, 900]


def test_client_lockout_covers_every_name_from_that_client(dash_home, monkeypatch) -> None:
    monkeypatch.setitem(throttle.RULES, "client", throttle.Rule(free=3))
    monkeypatch.setattr(auth, "_client_address", lambda: "203.0.113.7")
    at = AppTest.from_file(str(APP), default_timeout=30)
    for i in range(4):
        at = _login(f"guess{i}", "wrong-password-x", at)
    at = _login("provider", PASSWORDS["provider"])
    assert _signed_in_as(at) is None
    assert any("Too many failed sign-ins" in e for e in _errors(at))


def test_sign_ins_and_failures_are_audited_without_passwords_or_typed_names(dash_home) -> None:
    _login("hr_acme", "wrong-password-x")
    _login("typed-secret-name", "wrong-password-y")
    at = _login("hr_acme", PASSWORDS["hr_acme"])
    at.switch_page("views/hr_trends.py").run()
    from dashboards import audit_hooks

    audit_hooks.writer().flush()
    log = audit.read(dash_home / "audit.duckdb")
    events = log.select("event", "username", "role", "customer_id", "page").rows()
    assert ("sign_in_failed", "hr_acme", None, None, "login") in events
    assert ("sign_in_failed", None, None, None, "login") in events
    assert ("sign_in", "hr_acme", "hr", "acme", "login") in events
    assert ("page_view", "hr_acme", "hr", "acme", "hr_overview") in events
    assert ("page_view", "hr_acme", "hr", "acme", "hr_trends") in events
    text = log.write_csv()
    for secret in ("typed-secret-name", "wrong-password", PASSWORDS["hr_acme"]):
        assert secret not in text
    assert (dash_home / "audit.duckdb").read_bytes().find(b"typed-secret-name") == -1
    assert audit.verify(dash_home / "audit.duckdb").ok
