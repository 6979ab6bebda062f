"""Key material for the raw store and for pseudonymisation.

Two independent keys: the DuckDB encryption key of the raw store and the HMAC key
that turns the provider's ``client_ref`` into a pseudonym. Holding one does not
give the other. Keys come from the environment or from 0600 key files in a 0700
folder (``$WELLBEING_KEY_DIR``, or ``keys/`` in the data folder), created on first
use; they are never logged and never passed to the dashboards.

Privacy reason: a key file or key folder that others can read is refused, not used,
so a mis-set mode is fixed before any individual record is decrypted with it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

RAW_KEY_ENV = "WELLBEING_RAW_KEY"
PSEUDONYM_KEY_ENV = "WELLBEING_PSEUDONYM_KEY"
KEY_ENV_VARS = (RAW_KEY_ENV, PSEUDONYM_KEY_ENV)
# A folder outside the data folder (a mounted secret): a copy of the data folder then carries no key.
KEY_DIR_ENV = "WELLBEING_KEY_DIR"


class KeyError_(RuntimeError):
    """A key is missing, unreadable or malformed, or its file or folder is open to others."""


def check_private_dir(folder: Path) -> None:
    """Refuse a key folder that group or others may read, write or enter (it must be 0700)."""
    if not folder.is_dir():
        return
    mode = folder.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyError_(f"key folder {folder} is open to other users (mode {mode:o}); run: chmod 700 {folder}")


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` (and parents) owner-only; an existing folder is checked, never loosened."""
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is reduced by the umask, never widened
    check_private_dir(folder)


def read_key_file(path: Path) -> str:
    """The key in ``path``; refused if the file or its folder is open to others, or too short."""
    check_private_dir(path.parent)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyError_(f"key file {path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    value = path.read_text(encoding="ascii").strip()
    if len(value) < 16:
        raise KeyError_(f"key file {path} is empty or too short; restore it from your key backup")
    return value


def write_key_file(path: Path, value: str) -> None:
    """Write a new key file (0600, must not exist yet), flushed to disk before returning."""
    make_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def new_key() -> str:
    """A fresh random key: 32 bytes, hex."""
    return secrets.token_hex(32)


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
        return read_key_file(path)
    if not create:
        raise KeyError_(f"no key: set {env_var} or restore the key file {path} (the store cannot be opened without it)")
    value = new_key()
    write_key_file(path, value)
    return value


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk (a key written, swapped or destroyed stays so after a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
