"""The sign-in cookie: a small HS256 JWT (PyJWT) that lets a reload or a new tab stay signed in.

Why not streamlit-authenticator's cookie: it is written by a custom component
(extra-streamlit-components) only after the component has rendered and answered, which the
sign-in rerun never waits for, so the cookie appeared only after the first sidebar click.

Here the token is issued on the server after a password check and written by the next render
(``st.html`` with a one-line script, :func:`write_script`); it is read back from the websocket
handshake (``st.context.cookies``) when a new session starts. The token says only *who* signed
in; role and customer always come from ``auth.yaml`` on every run.

A token is accepted only if: it is HS256 with the server's key (``auth.yaml`` ``cookie.key``;
``alg: none`` or any other algorithm is refused), not expired, its account still exists with
the same password hash, role and customer (``fp``), and it was issued after the user last
signed out (``signed_out_before``). Anything else is "no session": the sign-in page.

>>> key = "k" * 32
>>> token = issue("hr_acme", "fp1", key, ttl_seconds=60)
>>> decode(token, key)["sub"]
'hr_acme'
>>> decode(token + "x", key) is None
True
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import jwt

COOKIE_NAME = "wb_session"
ALGORITHM = "HS256"
AUDIENCE = "wellbeing-dashboards"


def fingerprint(account: dict[str, Any]) -> str:
    """Changes when the account's password, role or customer changes (old cookies then stop working)."""
    material = json.dumps([account.get("password"), account.get("role"), account.get("customer_id")])
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def issue(username: str, fp: str, key: str, *, ttl_seconds: float) -> str:
    now = time.time()
    claims = {
        "sub": username,
        "fp": fp,
        "aud": AUDIENCE,
        "iat": int(now),
        "t": int(now * 1000),
        "exp": int(now + ttl_seconds),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode(token: str | None, key: str) -> dict[str, Any] | None:
    """The claims of a valid token, or None (bad signature, other algorithm, expired, malformed)."""
    if not token or not key or len(token) > 4096:
        return None
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=AUDIENCE, options={"require": ["sub", "exp", "iat", "fp", "t"]}
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("t"), int):
        return None
    return dict(claims)


def write_script(token: str | None, *, max_age: int, secure: bool) -> str:
    """A script that sets (or, with ``token=None``, clears) the cookie for the whole app."""
    if token is None:
        value = f"{COOKIE_NAME}=; Path=/; Max-Age=0; SameSite=Strict"
    else:
        value = f"{COOKIE_NAME}={token}; Path=/; Max-Age={int(max_age)}; SameSite=Strict"
    if secure:
        value += "; Secure"
    return f'<script>document.cookie = "{value}";</script>'
