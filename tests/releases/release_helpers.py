"""Helpers shared by the release tests (imported by name; tests/releases is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from pipeline.keys import KEY_ENV_VARS
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CUSTOMERS = ("acme-moderation", "globex-trust-safety")
MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06")


def run_cli(*args: str, env_home: Path | None = None, check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``wellbeing`` entry point (``pipeline.cli:main``) in a fresh process (a real restart of the pipeline)."""
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV_VARS}
    if env_home is not None:
        env["WELLBEING_HOME"] = str(env_home)
    proc = subprocess.run(
        [PYTHON, "-c", "import sys; from pipeline.cli import main; sys.exit(main())", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def published(settings: Settings, query: str, params: list[object] | None = None) -> list[tuple]:
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def raw_ledger(settings: Settings) -> list[tuple]:
    from pipeline.raw_store import raw_connection

    with raw_connection(settings, read_only=True) as con:
        return con.execute(
            "SELECT customer_id, period, kind, rho, release_id, requested_by FROM budget_ledger ORDER BY customer_id, entry_id"
        ).fetchall()


def squeeze_budget(settings: Settings, customer: str, *, spent: float) -> float:
    """A privacy officer lowers the customer's annual ε so that the cap is ``spent`` (ρ already in the ledger).

    Every release's cost follows the annual dial, so a year of releases always fits the cap; a
    release is refused when the ledger already holds what the (now lower) cap allows. Returns the cap.
    """
    from privacy.budget import implied_epsilon
    from stores.control import control_connection, set_policy_value

    epsilon = implied_epsilon(spent, 1e-6)
    with control_connection(settings) as con:
        set_policy_value(con, "epsilon_annual", repr(epsilon), customer_id=customer, changed_by="po")
    return spent
