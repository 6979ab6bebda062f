"""Real-browser tests: `wellbeing dashboards` on loopback, driven by Playwright over Debian's Chromium.

They catch what AppTest cannot: the real server start (imports from the installed package), the
real login form and cookie, reloads and deep links, the rendered charts, real downloads.
Playwright cannot download browsers here, so it launches ``/usr/bin/chromium``
(``executable_path``; `.ci/run` installs Debian's ``chromium``). Screenshots of every page go to
``tests/artifacts/`` (not committed).
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from dash_helpers import PASSWORDS
from st_client import free_port, wait_http

from pipeline.commands.dashboards import dashboard_argv, dashboard_env
from pipeline.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = {
    "hr_acme": [("Overview", "hr_overview"), ("Trends", "hr_trends"), ("Breakdown", "hr_breakdown")],
    "provider": [("Uptake across customers", "provider_uptake")],
    "privacy": [
        ("Budget", "privacy_budget"),
        ("Policy", "privacy_policy"),
        ("What-if tuner", "privacy_whatif"),
        ("Releases", "privacy_release"),
    ],
}


@pytest.fixture
def server(dash_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real dashboards server on a free loopback port; yields its base URL."""
    monkeypatch.setenv("WELLBEING_RAW_KEY", "never-handed-to-the-dashboards-000")
    port = free_port()
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        dashboard_argv(port, "127.0.0.1"),
        env=dashboard_env(Settings.from_env()),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        assert wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc) == "ok"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: .ci/run must apt-get install chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def _settled(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until Streamlit has finished running the script (no running indicator) and charts drew."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.wait_for_timeout(800)


def _sign_in(page, base: str, user: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/")
    page.get_by_role("textbox", name="Username").fill(user)
    page.get_by_role("textbox", name="Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Signed in as").wait_for(timeout=60_000)
    _settled(page)


def _no_exception(page, name: str) -> str:  # type: ignore[no-untyped-def]
    text = str(page.inner_text("body"))
    assert page.locator('[data-testid="stException"]').count() == 0, f"{name}: {text[:1500]}"
    assert "Traceback" not in text, f"{name}: {text[:1500]}"
    return text


def test_every_page_of_every_role_renders_and_is_screenshotted(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for user, pages in PAGES.items():
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        _sign_in(page, server, user)
        for link, name in pages:
            page.get_by_role("link", name=link).first.click()
            _settled(page)
            text = _no_exception(page, name)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            if name == "hr_overview":
                assert "4,321" in text and "8,765" not in text  # own marker, never another tenant's
        context.close()
    page = browser.new_page()
    page.goto(server + "/notice?customer=acme")
    _settled(page)
    _no_exception(page, "notice")
    page.screenshot(path=str(ARTIFACTS / "notice.png"), full_page=True)
    assert (ARTIFACTS / "hr_overview.png").stat().st_size > 10_000


def test_reload_keeps_the_user_signed_in_and_deep_links_work(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, server, "hr_acme")
    page.reload()
    _settled(page)
    assert page.get_by_text("Signed in as").count() > 0, "a reload signed the user out"
    page.goto(server + "/hr_trends")
    _settled(page)
    assert page.get_by_role("heading", name="Trends").count() > 0
    page.goto(server + "/privacy_budget")  # a page of another role
    _settled(page)
    text = _no_exception(page, "other role")
    assert "Privacy budget" not in text or "not available for your role" in text
    context.close()


def test_csv_download_parses_as_numbers(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    _sign_in(page, server, "hr_acme")
    page.get_by_role("link", name="Breakdown").first.click()
    _settled(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download this table (CSV)").click()
    frame = pl.read_csv(io.BytesIO(Path(info.value.path()).read_bytes()))
    assert frame.schema["Value"] == pl.Float64 and frame.schema["95 % high"] == pl.Float64
    assert set(frame["Status"].unique().to_list()) <= {"published", "hidden", "too uncertain"}
    assert set(frame["Organisation"].unique().to_list()) == {"acme"}
    context.close()


def test_trends_selector_and_service_mix_in_the_browser(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    _sign_in(page, server, "hr_acme")
    page.get_by_role("link", name="Trends").first.click()
    _settled(page)
    page.get_by_text("Sites", exact=True).click()
    _settled(page)
    page.get_by_text("Departments", exact=True).click()
    _settled(page)
    text = _no_exception(page, "trends")
    assert "Share of staff who used the service: nothing to show" not in text
    assert page.locator(".vega-embed").count() >= 1
    context.close()

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    _sign_in(page, server, "provider")
    _settled(page)
    mix = page.locator(".vega-embed").last
    mix.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = mix.bounding_box()
    assert box is not None and box["height"] > 150  # the stacked bars have height (they used to collapse)
    page.screenshot(path=str(ARTIFACTS / "provider_service_mix.png"), full_page=True)
    context.close()
