"""Fixtures for the dashboard tests: a WELLBEING_HOME with a published store and accounts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from dash_helpers import ACCOUNTS, APP, CUSTOMERS, MARKERS, N_MONTHS, PASSWORDS, app_as, page_text  # noqa: F401
from published_factory import write_empty_store, write_published_store

from stores.accounts import add_user


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    """Streamlit's caches and the policy cache are process-wide: clear them so one test never reads
    another test's store."""
    from dashboards import control

    for clear in (st.cache_data.clear, st.cache_resource.clear, control._POLICIES.clear, control._READS.clear):
        clear()
    yield
    for clear in (st.cache_data.clear, st.cache_resource.clear, control._POLICIES.clear, control._READS.clear):
        clear()


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
