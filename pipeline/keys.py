"""Key material for the raw store and for pseudonymisation.

Two independent keys: the DuckDB encryption key of the raw store and the HMAC key
that turns the provider's ``client_ref`` into a pseudonym. Holding one does not
give the other. Keys come from the environment or from 0600 key files created on
first use; they are never logged and never passed to the dashboards.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

RAW_KEY_ENV = "WELLBEING_RAW_KEY"
PSEUDONYM_KEY_ENV = "WELLBEING_PSEUDONYM_KEY"
KEY_ENV_VARS = (RAW_KEY_ENV, PSEUDONYM_KEY_ENV)


class KeyError_(RuntimeError):
    """A key is missing, unreadable or malformed."""


def load_or_create_key(env_var: str, path: Path, *, create: bool = True) -> str:
    """Return the key from ``env_var`` or ``path``; create a random key file (0600) if allowed.

    ``create=False`` is used where an existing store is opened: a missing key there
    must be an error, never a silent new key (that would make the data unreadable).
    """
    value = os.environ.get(env_var)
    if value:
        if len(value) < 16:
            raise KeyError_(f"{env_var} is too short: use at least 16 characters (32 random bytes hex recommended)")
        return value
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyError_(
                f"key file {path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
            )
        value = path.read_text(encoding="ascii").strip()
        if len(value) < 16:
            raise KeyError_(f"key file {path} is empty or too short; restore it from your key backup")
        return value
    if not create:
        raise KeyError_(
            f"no key: set {env_var} or restore the key file {path} (the store cannot be opened without it)"
        )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value + "\n")
    return value
