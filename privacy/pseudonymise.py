"""Keyed pseudonyms: HMAC-SHA256 of the provider's ``client_ref``.

Privacy reason: the raw store must never hold the provider's client id. A keyed
HMAC (not a plain or salted hash) means that someone who holds the store but
not the pseudonym key cannot recompute a pseudonym from a known ``client_ref``.
The key is always passed in; this module never reads files or the environment.

>>> pseudonym(b"k" * 32, "client-1") == hmac.new(b"k" * 32, b"client-1", hashlib.sha256).hexdigest()
True
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

MIN_KEY_BYTES = 16
_KEY_CHECK_LABEL = b"wellbeing/pseudonym-key-check/v1"


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")


def pseudonym(key: bytes, ref: str) -> str:
    """Hex HMAC-SHA256 of one ``client_ref`` under ``key``."""
    _check_key(key)
    return hmac.digest(key, ref.encode("utf-8"), "sha256").hex()


def pseudonyms(key: bytes, refs: Iterable[str]) -> list[str]:
    """Pseudonyms of many (distinct) refs; call it on distinct values, not on rows.

    The keyed HMAC state is built once and copied per ref (the standard library's
    ``hmac.copy``), which is what makes millions of refs cheap.
    """
    _check_key(key)
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    out = []
    for ref in refs:
        h = keyed.copy()
        h.update(ref.encode("utf-8"))
        out.append(h.hexdigest())
    return out


def key_check(key: bytes) -> str:
    """A fingerprint of the key (HMAC of a fixed label): detects a wrong key, reveals nothing."""
    _check_key(key)
    return hmac.digest(key, _KEY_CHECK_LABEL, "sha256").hex()
