"""AppTest of the router: sign-in, every page of every role, access control, empty store."""

from __future__ import annotations

import pytest
from dash_helpers import APP, PASSWORDS, app_as, page_text
from streamlit.testing.v1 import AppTest

from dashboards.auth import FAILED_LOGIN
from dashboards.ui import NO_RELEASES

ROLE_PAGES = {
    "hr_acme": ["views/hr_overview.py", "views/hr_trends.py", "views/hr_breakdown.py", "views/notice.py"],
    "provider": ["views/provider_uptake.py", "views/notice.py"],
    "privacy": [
        "views/privacy_budget.py",
        "views/privacy_policy.py",
        "views/privacy_whatif.py",
        "views/privacy_release.py",
        "views/notice.py",
    ],
}
ALL_PAGES = sorted({p for pages in ROLE_PAGES.values() for p in pages})
TITLES = {
    "views/hr_overview.py": "Overview",
    "views/hr_trends.py": "Trends",
    "views/hr_breakdown.py": "Breakdown",
    "views/provider_uptake.py": "Uptake across customers",
    "views/privacy_budget.py": "Privacy budget",
    "views/privacy_policy.py": "Release policy",
    "views/privacy_whatif.py": "What-if tuner",
    "views/privacy_release.py": "Releases",
    "views/notice.py": "How your employer's wellbeing reports protect you",
}


def _login(username: str, password: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    return at


def test_failed_login_shows_an_error_and_no_data(dash_home) -> None:
    at = _login("hr_acme", "wrong-password")
    assert not at.exception
    assert FAILED_LOGIN in [e.value for e in at.error]
    assert len(at.metric) == 0
    assert "principal" not in at.session_state
    with pytest.raises(ValueError):  # no role page is registered before sign-in
        at.switch_page("views/hr_overview.py")


def test_unknown_user_cannot_sign_in(dash_home) -> None:
    at = _login("mallory", "acme-password-1")
    assert FAILED_LOGIN in [e.value for e in at.error]
    assert len(at.metric) == 0


def test_hr_signs_in_and_sees_the_overview(dash_home) -> None:
    at = _login("hr_acme", PASSWORDS["hr_acme"])
    assert not at.exception
    assert [t.value for t in at.title] == ["Overview"]
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["Employees who used the service", "Share of staff who used the service", "Contacts"]
    # wellbeing figures come from the quarter containing the month (the default cadence)
    assert labels[3:] == [
        "Low wellbeing (WHO-5 below 50)",
        "Improved by 10+ points",
        "Average wellbeing (WHO-5, 0–100)",
        "Satisfaction (1–5)",
    ]
    # acme's marker total of its last month, formatted with a thousands separator
    assert at.metric[0].value == "4,321"
    assert "vs May 2025" in (at.metric[0].delta or "")
    assert any("95 % interval" in c.value for c in at.caption)


@pytest.mark.parametrize(("user", "page"), [(u, p) for u, pages in ROLE_PAGES.items() for p in pages])
def test_every_page_of_every_role_renders(dash_home, user: str, page: str) -> None:
    at = app_as(user)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert TITLES[page] in [t.value for t in at.title]


@pytest.mark.parametrize("user", list(ROLE_PAGES))
def test_pages_of_other_roles_are_not_reachable(dash_home, user: str) -> None:
    at = app_as(user)
    at.run()
    for page in ALL_PAGES:
        if page in ROLE_PAGES[user]:
            continue
        with pytest.raises(ValueError, match="Could not find"):
            at.switch_page(page)


@pytest.mark.parametrize(
    ("user", "page"),
    [
        ("hr_acme", "views/hr_overview.py"),
        ("hr_acme", "views/hr_trends.py"),
        ("hr_acme", "views/hr_breakdown.py"),
        ("provider", "views/provider_uptake.py"),
        ("privacy", "views/privacy_budget.py"),
    ],
)
def test_empty_store_says_no_releases_yet(empty_home, user: str, page: str) -> None:
    at = app_as(user)
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    assert NO_RELEASES in [i.value for i in at.info]


def test_missing_store_file_is_handled_like_an_empty_store(empty_home) -> None:
    (empty_home / "published.duckdb").unlink()
    at = app_as("hr_acme")
    at.run()
    assert not at.exception
    assert NO_RELEASES in [i.value for i in at.info]


def test_suppressed_cells_read_hidden_never_blank_or_zero(dash_home) -> None:
    at = app_as("hr_acme")
    at.run()
    at.switch_page("views/hr_breakdown.py").run()
    at.selectbox(key="breakdown_dim").select("Department").run()
    table = at.dataframe[0].value
    small = table[table["Department"] == "Small teams"].iloc[0]
    assert small["Employees who used the service"] == "hidden — too few people to show reliably"
    assert small["Employees who used the service (95 % interval)"] == ""
    # visible rows first, sorted by engaged employees (largest first)
    visible = [int(v.replace(",", "")) for v in table["Employees who used the service"] if not v.startswith("hidden")]
    assert visible == sorted(visible, reverse=True) and visible


def test_signed_in_users_see_who_they_are_and_can_sign_out(dash_home) -> None:
    at = app_as("privacy")
    at.run()
    assert any("privacy" in c.value and "Privacy officer" in c.value for c in at.sidebar.caption)
    at.sidebar.button(key="signout").click().run()
    at.run()
    assert "principal" not in at.session_state
    assert len(at.metric) == 0


def test_principal_comes_from_the_credentials_file_not_the_session(dash_home) -> None:
    from stores.principal import Principal

    at = app_as("hr_acme")
    at.session_state["principal"] = Principal("hr_acme", "hr", "globex")  # tampered
    at.run()
    assert at.session_state["principal"] == Principal("hr_acme", "hr", "acme")
    assert "8,765" not in page_text(at)


OIDC_SECRETS = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "dashboards",
    "client_secret": "secret",
    "server_metadata_url": "https://idp.example.test/.well-known/openid-configuration",
}


def test_oidc_sign_in_maps_the_email_to_an_account(dash_home) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = OIDC_SECRETS
    at.user = {"is_logged_in": True, "email": "hr_acme@wellbeing.local"}
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Overview"]
    assert at.metric[0].value == "4,321"


def test_oidc_user_without_an_account_gets_no_access(dash_home) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = OIDC_SECRETS
    at.user = {"is_logged_in": True, "email": "stranger@example.test"}
    at.run()
    assert not at.exception
    assert len(at.metric) == 0
    assert any("no access" in e.value for e in at.error)


def test_trends_selector_follows_the_breakdown(dash_home) -> None:
    """Switching Compare from Sites to Departments offers departments (it used to empty and say nothing to show)."""
    at = app_as("hr_acme")
    at.run()
    at.switch_page("views/hr_trends.py").run()
    at.radio(key="trend_compare").set_value("Sites").run()
    assert at.multiselect(key="trend_groups_site").value
    at.radio(key="trend_compare").set_value("Departments").run()
    assert not at.exception
    picked = at.multiselect(key="trend_groups_department").value
    assert picked and set(picked) <= {"Finance", "Operations", "Sales", "Engineering", "People", "Small teams"}
    assert not [i for i in at.info if "nothing to show" in i.value and "Share of staff" in i.value]


def test_hidden_groups_are_listed_under_the_chart(dash_home) -> None:
    at = app_as("hr_acme")
    at.run()
    at.switch_page("views/hr_breakdown.py").run()
    at.selectbox(key="breakdown_dim").select("Department").run()
    assert any("Not in the chart" in c.value and "Small teams" in c.value for c in at.caption)


def test_downloads_are_numeric_with_a_status_and_neutralised() -> None:
    import io

    import polars as pl

    from stores.exports import export_frame, to_csv

    cells = pl.DataFrame(
        {
            "customer_id": ["acme"] * 3,
            "period": ["2025-01"] * 3,
            "dimension": ["department", "department", "service"],
            "group_value": ['=HYPERLINK("http://x")', "Ops", "one_to_one"],
            "metric": ["who5_mean", "contacts", "engaged_employees"],
            "value": [55.5, None, 40.0],
            "ci_low": [50.0, None, 30.0],
            "ci_high": [60.0, None, 50.0],
            "suppressed": [False, True, False],
            "status": ["published", "too_uncertain", "published"],
            "reason": [None, "its interval would be too wide", None],
        }
    )
    text = to_csv(export_frame(cells))
    back = pl.read_csv(io.StringIO(text))
    assert back.schema["Value"] == pl.Float64 and back.schema["95 % low"] == pl.Float64
    assert back["Status"].to_list() == ["published", "too uncertain", "published"]
    assert back["Group"].to_list()[0].startswith("'=")  # a formula is text in a spreadsheet
    assert back["Group"].to_list()[2] == "One-to-one therapy"
    assert back["Figure"].to_list()[0] == "Average wellbeing (WHO-5, 0–100)"


def test_a_change_within_the_noise_reads_no_reliable_change() -> None:
    from dashboards.ui import change_is_reliable

    before = {"value": 50.0, "ci_low": 45.0, "ci_high": 55.0, "noise_sd": 2.5}
    small = {"value": 55.0, "ci_low": 50.0, "ci_high": 60.0, "noise_sd": 2.5}  # 5 < 1.96·√12.5 ≈ 6.9
    large = {"value": 58.0, "ci_low": 53.0, "ci_high": 63.0, "noise_sd": 2.5}  # 8 > 6.9
    assert not change_is_reliable(small, before) and change_is_reliable(large, before)
    assert not change_is_reliable({**large, "value": None}, before)


def test_who5_trend_has_the_screening_reference_line() -> None:
    from datetime import date

    import polars as pl

    from dashboards.charts import trend_with_band

    frame = pl.DataFrame(
        {
            "period": ["2025-Q1", "2025-Q2"],
            "month": [date(2025, 1, 1), date(2025, 4, 1)],
            "value": [48.0, 52.0],
            "ci_low": [44.0, 48.0],
            "ci_high": [52.0, 56.0],
        }
    )
    spec = trend_with_band(frame, "who5_mean")
    layers = spec["layer"]
    assert any(
        layer.get("data", {}).get("values") == [{"ref": 50.0, "text": "50: screening cut-off"}] for layer in layers
    )
    assert spec["layer"][1]["encoding"]["y"]["scale"]["domain"] == [0.0, 100.0]
