"""Sign-in state: the throttle (exponential lock-out after repeated failures, per account and per client,
persisted) and sign-out revocations of session cookies.

The throttle.

Counters live in the audit file (``signin_throttle`` in ``audit.duckdb``), so restarting the
dashboards does not reset them. Keys are opaque references computed by the caller with a keyed
hash (``ref``): the typed user name (whether or not such an account exists, so the lock-out
never reveals which accounts exist) and the client address.

Policy: the first ``free`` failures cost nothing; each further failure locks the key for
``base · 2^(failures − free)`` seconds, at most ``cap``. A key's failures are forgotten
``forget_after`` seconds after its last failure; a successful sign-in clears the account's
counter (not the client's, so one valid account cannot launder guesses at others).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "audit.duckdb"
>>> keys = [("account", "a1"), ("client", "c1")]
>>> [record_failure(path, keys) for _ in range(5)][-1]
0.0
>>> record_failure(path, keys)
30.0
>>> 29 < locked_for(path, keys) <= 30
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from stores.audit import audit_connection, now_utc
from stores.paths import HomePaths


@dataclass(frozen=True)
class Rule:
    free: int
    base: float = 30.0
    cap: float = 900.0
    forget_after: float = 24 * 3600.0

    def lock_seconds(self, failures: int) -> float:
        if failures <= self.free:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (failures - self.free - 1)))


# A shared office address sees many people's typos: the client allows more free failures.
RULES: dict[str, Rule] = {"account": Rule(free=5), "client": Rule(free=20)}


def _rule(kind: str) -> Rule:
    if kind not in RULES:
        raise ValueError(f"unknown throttle kind {kind!r}")
    return RULES[kind]


def locked_for(store: HomePaths | Path, keys: Iterable[tuple[str, str]], now: datetime | None = None) -> float:
    """Seconds until every key may try again (0 = not locked)."""
    now = now or now_utc()
    keys = list(keys)
    with audit_connection(store) as con:
        wait = 0.0
        for kind, ref in keys:
            _rule(kind)
            row = con.execute(
                "SELECT locked_until FROM signin_throttle WHERE kind = ? AND ref = ?", [kind, ref]
            ).fetchone()
            if row and row[0] is not None and row[0] > now:
                wait = max(wait, (row[0] - now).total_seconds())
    return wait


def record_failure(store: HomePaths | Path, keys: Iterable[tuple[str, str]], now: datetime | None = None) -> float:
    """Count one failed sign-in for every key; returns the lock-out it now carries (seconds, 0 = none)."""
    now = now or now_utc()
    wait = 0.0
    with audit_connection(store) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for kind, ref in keys:
                rule = _rule(kind)
                row = con.execute(
                    "SELECT failures, last_failure FROM signin_throttle WHERE kind = ? AND ref = ?", [kind, ref]
                ).fetchone()
                failures = 1
                if row and (now - row[1]).total_seconds() < rule.forget_after:
                    failures = int(row[0]) + 1
                lock = rule.lock_seconds(failures)
                until = now + timedelta(seconds=lock) if lock else None
                con.execute(
                    "INSERT OR REPLACE INTO signin_throttle (kind, ref, failures, last_failure, locked_until) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [kind, ref, failures, now, until],
                )
                wait = max(wait, lock)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return wait


def record_success(store: HomePaths | Path, account_ref: str) -> None:
    """A successful sign-in clears the account's failures (the client's stay)."""
    with audit_connection(store) as con:
        con.execute("DELETE FROM signin_throttle WHERE kind = 'account' AND ref = ?", [account_ref])


def revoke_sessions(store: HomePaths | Path, username: str, at_ms: int) -> None:
    """Cookies of ``username`` issued before ``at_ms`` (epoch milliseconds) no longer sign anyone in (sign-out)."""
    with audit_connection(store) as con:
        con.execute(
            "INSERT OR REPLACE INTO session_revocations (username, not_before_ms) VALUES (?, ?)", [username, int(at_ms)]
        )


def sessions_valid_from(store: HomePaths | Path, username: str) -> int:
    """Epoch milliseconds before which ``username``'s cookies are revoked (0 = none revoked)."""
    with audit_connection(store) as con:
        row = con.execute("SELECT not_before_ms FROM session_revocations WHERE username = ?", [username]).fetchone()
    return int(row[0]) if row else 0
