"""Keyed pseudonyms: HMAC-SHA256 of the provider's ``client_ref``.

Privacy reason: the raw store must never hold the provider's client id. A keyed
HMAC (not a plain or salted hash) means that someone who holds the store but
not the pseudonym key cannot recompute a pseudonym from a known ``client_ref``.
The key is always passed in; this module never reads files or the environment.

Ingest hashes the distinct refs inside DuckDB with :func:`hmac_sql` (RFC 2104 written with
DuckDB's ``sha256``: parallel, and the refs never leave the database); :func:`pseudonyms` is
the standard-library reference it is tested against.

>>> pseudonym(b"k" * 32, "client-1") == hmac.new(b"k" * 32, b"client-1", hashlib.sha256).hexdigest()
True
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

MIN_KEY_BYTES = 16
_KEY_CHECK_LABEL = b"wellbeing/pseudonym-key-check/v1"
_SHA256_BLOCK = 64


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


def hmac_sql(column: str) -> str:
    """DuckDB expression of the hex HMAC-SHA256 of the VARCHAR ``column`` (UTF-8 bytes).

    HMAC(K, m) = H((K' ⊕ opad) ‖ H((K' ⊕ ipad) ‖ m)) with K' the key padded to the block size
    (RFC 2104); DuckDB's ``sha256`` of a BLOB returns hex, hence ``unhex`` for the inner digest.
    Bind the parameters from :func:`hmac_sql_params`; the statement text never contains the key.
    """
    return f"sha256($hmac_opad || unhex(sha256($hmac_ipad || encode({column}))))"


def hmac_sql_params(key: bytes) -> dict[str, bytes]:
    """The key-derived pads bound to :func:`hmac_sql` (as secret as the key itself)."""
    _check_key(key)
    k = hashlib.sha256(key).digest() if len(key) > _SHA256_BLOCK else bytes(key)
    k = k.ljust(_SHA256_BLOCK, b"\0")
    return {"hmac_ipad": bytes(b ^ 0x36 for b in k), "hmac_opad": bytes(b ^ 0x5C for b in k)}
