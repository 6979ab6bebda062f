"""Constants and helpers shared by the dashboard tests (a named module: every test folder has a conftest)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

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
