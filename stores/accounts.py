"""The dashboard credentials file (``$WELLBEING_HOME/auth.yaml``): bcrypt hashes, role, customer binding.

Format (the ``credentials`` part is what streamlit-authenticator reads)::

    cookie: {name: wellbeing_dashboards, key: <random hex>, expiry_days: 1}
    credentials:
      usernames:
        hr_acme: {name: ..., email: ..., password: <bcrypt hash>, roles: [hr], role: hr, customer_id: acme}

Privacy reason: an ``hr`` account is bound to exactly one customer here; the dashboards derive
the principal from this file on every run, never from anything the browser sends.
Passwords are never stored in clear: :func:`hash_password` is exactly streamlit-authenticator's
``Hasher.hash`` (bcrypt, default cost), done with ``bcrypt`` directly so that the ``wellbeing``
CLI does not import Streamlit; the sign-in tests check the two agree.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from stores.principal import ROLES, Principal

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
MIN_PASSWORD_LENGTH = 8
COOKIE_NAME = "wellbeing_dashboards"


class AccountError(ValueError):
    """An account cannot be added or the credentials file is malformed (message says what to do)."""


def empty_config() -> dict[str, Any]:
    return {
        "cookie": {"name": COOKIE_NAME, "key": secrets.token_hex(32), "expiry_days": 1},
        "credentials": {"usernames": {}},
    }


def load_accounts(path: Path) -> dict[str, Any]:
    """Read the credentials file; a missing file is an empty configuration (nobody can sign in)."""
    if not path.exists():
        return empty_config()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AccountError(
            f"{path} is not valid YAML ({exc}); fix it or recreate it with `wellbeing users add`"
        ) from None
    if not isinstance(data, dict):
        raise AccountError(f"{path} must hold a mapping with 'cookie' and 'credentials'")
    config = empty_config()
    config["cookie"].update(data.get("cookie") or {})
    users = ((data.get("credentials") or {}).get("usernames")) or {}
    if not isinstance(users, dict):
        raise AccountError(f"{path}: credentials.usernames must be a mapping of username -> account")
    config["credentials"]["usernames"] = users
    return config


def save_accounts(path: Path, config: dict[str, Any]) -> None:
    """Write the file atomically with mode 0600 (it holds password hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=True)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def add_user(
    path: Path,
    username: str,
    password: str,
    role: str,
    customer_id: str | None = None,
    *,
    name: str | None = None,
    email: str | None = None,
) -> Principal:
    """Add or replace one account (bcrypt-hashed password); returns the principal it signs in as."""
    if not USERNAME_RE.match(username or ""):
        raise AccountError(
            f"username {username!r} is not valid: 2-64 characters, letters, digits and . _ @ - "
            "(starting with a letter or digit)"
        )
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not valid: use one of {', '.join(ROLES)}")
    if role == "hr" and not customer_id:
        raise AccountError("an hr account must be bound to one customer: pass --customer CUSTOMER_ID")
    if role != "hr" and customer_id:
        raise AccountError(f"a {role} account sees every customer; do not pass --customer")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > 72:
        raise AccountError("the password must be at most 72 bytes (a bcrypt limit)")
    principal = Principal(username, role, customer_id)
    config = load_accounts(path)
    config["credentials"]["usernames"][username] = {
        "name": name or username,
        "email": email or f"{username}@wellbeing.local",
        "password": hash_password(password),
        "roles": [role],
        "role": role,
        "customer_id": customer_id,
    }
    save_accounts(path, config)
    return principal


def hash_password(password: str) -> str:
    """bcrypt hash in the format streamlit-authenticator verifies (``$2b$12$...``)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def list_users(path: Path) -> list[dict[str, Any]]:
    """Username, role and customer of every account (no hashes)."""
    users = load_accounts(path)["credentials"]["usernames"]
    return [
        {"username": u, "role": a.get("role"), "customer_id": a.get("customer_id"), "name": a.get("name")}
        for u, a in sorted(users.items())
    ]


def principal_for(config: dict[str, Any], username: str | None = None, *, email: str | None = None) -> Principal | None:
    """The principal of ``username`` (or of the account with ``email``, for OIDC); None when unknown/invalid."""
    users = config["credentials"]["usernames"]
    account = users.get(username) if username else None
    if account is None and email:
        for user, acc in users.items():
            if str(acc.get("email", "")).lower() == email.lower():
                username, account = user, acc
                break
    if account is None or username is None:
        return None
    try:
        return Principal(username, account.get("role"), account.get("customer_id") or None)
    except ValueError:
        return None


def credentials_for_authenticator(config: dict[str, Any]) -> dict[str, Any]:
    """A private copy of the credentials for streamlit-authenticator (it mutates what it is given)."""
    return copy.deepcopy(config["credentials"])


def generate_password() -> str:
    return secrets.token_urlsafe(12)
