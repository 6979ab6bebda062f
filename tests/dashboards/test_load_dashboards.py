"""Load: the real ``wellbeing dashboards`` server, many signed-in tabs, the published store swapped meanwhile.

Each tab is a websocket client that speaks Streamlit's protocol as a browser does (``st_client``):
it signs in through the form, then re-renders every page of its role while the published store
is re-published (written beside, ``os.replace``) in the background. Every render must finish
without an exception element, and a new visitor must be served afterwards. 30 tabs; the figures at 10,
20 and 30 sessions are printed by ``benchmarks/bench_dashboards_load.py``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from dash_helpers import CUSTOMERS, MARKERS, N_MONTHS, PASSWORDS
from published_factory import write_published_store
from st_client import Server, free_port, run_load

from pipeline.commands.dashboards import dashboard_argv, dashboard_env
from pipeline.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

USERS = [(u, PASSWORDS[u]) for u in ("hr_acme", "provider", "privacy", "hr_globex")]


def test_concurrent_sessions_of_every_role_render_while_the_store_is_republished(
    dash_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WELLBEING_RAW_KEY", "never-handed-to-the-dashboards-000")
    started = time.monotonic()
    v1 = tmp_path / "v1.duckdb"
    v2 = tmp_path / "v2.duckdb"
    v1.write_bytes((dash_home / "published.duckdb").read_bytes())
    write_published_store(
        v2, CUSTOMERS, N_MONTHS, start="2025-01", marker_values={c: m + 11 for c, m in MARKERS.items()}
    )
    port = free_port()
    with (
        (tmp_path / "streamlit.log").open("w") as log,
        Server(dashboard_argv(port, "127.0.0.1"), dashboard_env(Settings.from_env()), tmp_path, log),
    ):
        result = asyncio.run(
            run_load(
                port,
                USERS,
                sessions=30,
                rounds=2,
                published=dash_home / "published.duckdb",
                versions=[v2, v1],
                publish_every=0.3,
                timeout=90,
            )
        )
    print(result.summary())
    assert result.errors == []
    # every tab signed in and every render of every tab completed (2 rounds; users in turn: hr 3 pages,
    # provider 1, privacy officer 5, hr 3; 30 tabs = 7 turns + hr + provider)
    assert len(result.renders) == result.expected == 2 * (30 // 4 * (3 + 1 + 5 + 3) + (3 + 1))
    assert result.publishes >= 2
    assert result.new_visitor < 10
    assert time.monotonic() - started < 200
    log_text = (tmp_path / "streamlit.log").read_text()
    assert "Traceback" not in log_text, log_text[-3000:]
