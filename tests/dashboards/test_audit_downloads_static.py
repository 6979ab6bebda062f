"""Every download on every page goes through the audit wrapper, so it is recorded in the access log."""

from __future__ import annotations

from pathlib import Path

VIEWS = Path(__file__).resolve().parents[2] / "dashboards" / "views"


def test_no_page_offers_an_unrecorded_download() -> None:
    offenders = [p.name for p in sorted(VIEWS.glob("*.py")) if "st.download_button(" in p.read_text()]
    assert not offenders, f"use dashboards.audit_hooks.download_button (recorded in the access log) in {offenders}"
    users = [p.name for p in sorted(VIEWS.glob("*.py")) if "audit_hooks.download_button(" in p.read_text()]
    assert {"hr_overview.py", "hr_trends.py", "hr_breakdown.py", "provider_uptake.py", "privacy_budget.py"} <= set(
        users
    )
