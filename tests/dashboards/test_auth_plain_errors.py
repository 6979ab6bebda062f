"""Expected failures are plain messages, never a traceback: control store held by another process, published
store unreadable (being swapped or damaged) — for signed-in users and on the public privacy notice."""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dash_helpers import APP, app_as
from streamlit.testing.v1 import AppTest

from dashboards import control
from stores.control import control_connection

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def control_held_elsewhere(dash_home: Path, monkeypatch: pytest.MonkeyPatch):
    """Another process (the pipeline, a CLI command) holds control.duckdb; the dashboards retry briefly."""
    monkeypatch.setattr(control, "control_connection", functools.partial(control_connection, timeout=0.5))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(dash_home / "control.duckdb")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield
    proc.kill()
    proc.wait(timeout=10)


def _texts(at: AppTest) -> str:
    return "\n".join([w.value for w in at.warning] + [e.value for e in at.error] + [i.value for i in at.info])


def test_the_public_notice_never_shows_a_lock_error(control_held_elsewhere) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    at.switch_page("views/notice.py").run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "reload" in text.lower()  # a plain "try again in a moment" message (the page's own or the router's)
    for leak in ("lock", "Conflicting", "PID", "control.duckdb", "IOException"):
        assert leak not in text


def test_policy_page_with_the_control_store_held_is_a_plain_message(control_held_elsewhere) -> None:
    at = app_as("privacy")
    at.run()
    at.switch_page("views/privacy_policy.py").run()
    assert not at.exception, at.exception
    assert "busy" in _texts(at)


def test_a_damaged_or_half_swapped_published_store_is_a_plain_message(dash_home: Path) -> None:
    (dash_home / "published.duckdb").write_bytes(b"not a duckdb file" * 100)
    time.sleep(0.01)  # a new mtime: a new cache key
    for user, page in (
        ("hr_acme", "views/hr_trends.py"),
        ("provider", "views/provider_uptake.py"),
        ("privacy", "views/privacy_budget.py"),
    ):
        at = app_as(user)
        at.run()
        assert not at.exception, at.exception
        at.switch_page(page).run()
        assert not at.exception, at.exception
        assert "being updated" in _texts(at)


def test_a_damaged_account_file_is_a_plain_message(dash_home: Path) -> None:
    (dash_home / "auth.yaml").write_text("credentials: [unclosed\n")
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert any("account file cannot be read" in e.value for e in at.error)
