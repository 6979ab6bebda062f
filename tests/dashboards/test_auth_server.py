"""Sign-in on the real server, over the websocket a browser uses: reload stays signed in, deep links, other roles' URLs.

A "reload" is what a browser does: a new websocket (a new Streamlit session) that carries only
the cookies the page has set (``document.cookie`` in the script the app sent after sign-in).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import pytest
from dash_helpers import PASSWORDS
from st_client import Server, Session, free_port, set_cookies_from

from dashboards import session_cookie
from pipeline.commands.dashboards import dashboard_argv, dashboard_env
from pipeline.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _alg_none(username: str) -> str:
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "sub": username,
        "aud": session_cookie.AUDIENCE,
        "iat": now,
        "t": now * 1000,
        "exp": now + 3600,
        "fp": "x",
    }
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def test_reload_deep_links_and_other_roles_pages_on_the_real_server(dash_home: Path, tmp_path: Path) -> None:
    port = free_port()

    async def drive() -> dict[str, object]:
        out: dict[str, object] = {}
        jar: dict[str, str] = {}
        # 1. A deep link before sign-in shows the sign-in form at that URL; signing in opens that page.
        async with Session(port) as tab:
            form = await tab.render("hr_trends")
            out["form_at_deep_link"] = "Password" in form.widgets and not form.page_not_found
            signed = await tab.submit_login(form, "hr_acme", PASSWORDS["hr_acme"], "hr_trends")
            out["deep_link_text"] = signed.text
            out["exceptions"] = list(signed.exceptions)
            set_cookies_from(signed, jar)
            # another role's page: a plain answer, no data, no exception
            other = await tab.render("privacy_budget")
            out["other_role"] = other.text
            out["exceptions"] += other.exceptions
        out["cookie_set"] = session_cookie.COOKIE_NAME in jar
        # 2. Reload (new websocket with the cookie) on another of the user's pages: still signed in.
        async with Session(port, cookies=jar) as tab:
            again = await tab.render("hr_breakdown")
            out["reload_text"] = again.text
            out["exceptions"] += again.exceptions
            # 3. Sign out: the page clears the cookie; the old cookie no longer signs in.
            signout = again.widgets["Sign out"][1]
            from streamlit.proto.WidgetStates_pb2 import WidgetState

            out_page = await tab.render("hr_breakdown", [WidgetState(id=signout, trigger_value=True)])
            out["after_signout_has_form"] = "Password" in out_page.widgets
        async with Session(port, cookies=jar) as tab:
            revoked = await tab.render("hr_breakdown")
            out["revoked_has_form"] = "Password" in revoked.widgets
        # 4. A forged alg:none cookie: the sign-in page, never a traceback.
        async with Session(port, cookies={session_cookie.COOKIE_NAME: _alg_none("privacy")}) as tab:
            forged = await tab.render("privacy_budget")
            out["forged_has_form"] = "Password" in forged.widgets
            out["exceptions"] += forged.exceptions
        return out

    with (
        (tmp_path / "streamlit.log").open("w") as log,
        Server(dashboard_argv(port, "127.0.0.1"), dashboard_env(Settings.from_env()), tmp_path, log),
    ):
        out = asyncio.run(asyncio.wait_for(drive(), timeout=150))
    assert out["exceptions"] == []
    assert out["form_at_deep_link"]
    assert "Trends" in str(out["deep_link_text"]) and "Signed in as **hr_acme**" in str(out["deep_link_text"])
    assert "not available for your role" in str(out["other_role"])
    assert "Privacy budget" not in str(out["other_role"])
    assert out["cookie_set"]
    assert "Breakdown" in str(out["reload_text"]) and "hr_acme" in str(out["reload_text"])
    assert out["after_signout_has_form"] and out["revoked_has_form"] and out["forged_has_form"]
    assert "Traceback" not in (tmp_path / "streamlit.log").read_text()
    # the access audit saw it all (page views are written in batches; the server has stopped)
    from stores import audit

    log = audit.read(dash_home / "audit.duckdb")
    rows = set(log.select("event", "username", "page").rows())
    for row in (
        ("sign_in", "hr_acme", "login"),
        ("page_view", "hr_acme", "hr_trends"),
        ("not_available", "hr_acme", "privacy_budget"),
        ("session_resumed", "hr_acme", None),
        ("page_view", "hr_acme", "hr_breakdown"),
        ("sign_out", "hr_acme", None),
    ):
        assert row in rows, (row, sorted(rows, key=str))
    assert not any(r[0] == "page_view" and r[2] == "privacy_budget" for r in rows)
    assert audit.verify(dash_home / "audit.duckdb").ok
