"""Fixtures for the dashboard tests: a WELLBEING_HOME with a published store and accounts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboards.accounts import add_user
from published_factory import write_empty_store, write_published_store

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
CUSTOMERS = ["acme", "globex", "initech"]
N_MONTHS = 6
# Distinctive engaged totals of the last month, to spot a leak of one customer into another's view.
MARKERS = {"acme": 4321.0, "globex": 8765.0, "initech": 5678.0}
PASSWORDS = {
    "hr_acme": "acme-password-1",
    "hr_globex": "globex-password-1",
    "provider": "provider-password-1",
    "privacy": "privacy-password-1",
}
ACCOUNTS = {
    "hr_acme": ("hr", "acme"),
    "hr_globex": ("hr", "globex"),
    "provider": ("provider", None),
    "privacy": ("privacy_officer", None),
}


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    """st.cache_data is process-wide: clear it so one test never reads another test's store."""
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture(scope="session")
def _template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dash_template")
    write_published_store(home / "published.duckdb", CUSTOMERS, N_MONTHS, start="2025-01", marker_values=MARKERS)
    for username, (role, customer) in ACCOUNTS.items():
        add_user(home / "auth.yaml", username, PASSWORDS[username], role, customer)
    return home


@pytest.fixture
def dash_home(_template_home: Path, wb_home: Path) -> Path:
    """A fresh WELLBEING_HOME (from tests/conftest.py) holding a copy of the published store and accounts."""
    wb_home.mkdir(parents=True, exist_ok=True)
    for name in ("published.duckdb", "auth.yaml"):
        shutil.copy2(_template_home / name, wb_home / name)
    return wb_home


@pytest.fixture
def empty_home(_template_home: Path, wb_home: Path) -> Path:
    """A WELLBEING_HOME with accounts and an empty published store (before the first release)."""
    wb_home.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_template_home / "auth.yaml", wb_home / "auth.yaml")
    write_empty_store(wb_home / "published.duckdb")
    return wb_home


def app_as(username: str | None) -> AppTest:
    """An AppTest of the router with ``username`` already signed in (as streamlit-authenticator leaves it)."""
    at = AppTest.from_file(str(APP), default_timeout=30)
    if username is not None:
        at.session_state["authentication_status"] = True
        at.session_state["username"] = username
        at.session_state["name"] = username
    return at


def page_text(at: AppTest) -> str:
    """Every piece of text a user could read on the rendered page (markdown, metrics, tables, captions)."""
    parts: list[str] = []
    for el in at.markdown:
        parts.append(el.value)
    for el in at.caption:
        parts.append(el.value)
    for el in at.metric:
        parts.append(f"{el.label} {el.value} {el.delta}")
    for el in at.dataframe:
        parts.append(el.value.to_csv())
    for el in at.title:
        parts.append(el.value)
    for el in at.info:
        parts.append(el.value)
    for el in at.error:
        parts.append(el.value)
    for el in at.selectbox:
        parts.append(" ".join(map(str, el.options)))
    return "\n".join(parts)
