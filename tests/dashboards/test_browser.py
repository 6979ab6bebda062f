"""One real-browser test: `streamlit run` headless on loopback, Debian's Chromium driven over CDP.

It catches what AppTest cannot: the real server start (imports from an installed package, not
pytest's rootdir), the real login form, the rendered page. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from dash_helpers import PASSWORDS

from pipeline.commands.dashboards import dashboard_argv, dashboard_env
from pipeline.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s ({last})")


class CDP:
    """A minimal Chrome DevTools Protocol client over one page target."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):
        msg_id = next(self.ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 45.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.js(expression):
                return
            await asyncio.sleep(0.25)
        body = await self.js("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise TimeoutError(f"timed out waiting for {what or expression}; page text: {body!r}")

    async def sign_in(self, url: str, username: str, password: str) -> None:
        await self.call("Network.clearBrowserCookies")
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.querySelectorAll('input[type=password]').length == 1", what="login form")
        for selector, text in (("input[type=text]", username), ("input[type=password]", password)):
            await self.js(f"document.querySelector('{selector}').focus()")
            await self.call("Input.insertText", text=text)
        await asyncio.sleep(0.3)
        await self.js(
            "Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() == 'Login').click()"
        )

    async def click_link(self, text: str) -> None:
        """Click the sidebar navigation link whose text (without its icon) is ``text``."""
        found = await self.js(
            "(() => { const a = Array.from(document.querySelectorAll('a[href]')).find("
            f"a => a.innerText.split('\\n').map(t => t.trim()).includes({json.dumps(text)}));"
            " if (a) { a.click(); return true; } return false; })()"
        )
        assert found, f"no navigation link {text!r}"

    async def settle(self, selector: str, count: int = 1) -> None:
        await self.wait_for(
            f"document.querySelectorAll('{selector}').length >= {count} && "
            "!document.querySelector('[data-testid=\"stStatusWidget\"]')",
            what=selector,
        )
        await asyncio.sleep(1.5)  # let Vega charts finish drawing
        await self.wait_for("!document.querySelector('[data-testid=\"stStatusWidget\"]')", what="idle app")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def chromium_binary() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: .ci/run must apt-get install chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    return CHROMIUM


def test_signed_in_users_see_their_pages_in_a_real_browser(dash_home: Path, chromium_binary: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import websockets

    monkeypatch.setenv("WELLBEING_RAW_KEY", "never-handed-to-the-dashboards-000")
    app_port, cdp_port = _free_port(), _free_port()
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen(dashboard_argv(app_port, "127.0.0.1"), env=dashboard_env(Settings.from_env()),
                              stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    browser = None
    try:
        assert _wait_http(f"http://127.0.0.1:{app_port}/_stcore/health", 60, server) == "ok"
        browser = subprocess.Popen(
            [str(chromium_binary), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             "--window-size=1440,1000", f"--user-data-dir={tmp_path / 'chromium'}",
             f"--remote-debugging-port={cdp_port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        targets = json.loads(_wait_http(f"http://127.0.0.1:{cdp_port}/json/list", 30, browser))
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        url = f"http://127.0.0.1:{app_port}/"

        async def drive() -> dict[str, str]:
            async with websockets.connect(ws_url, max_size=64 * 1024 * 1024) as ws:
                cdp = CDP(ws)
                await cdp.call("Page.enable")
                await cdp.call("Network.enable")
                texts = {}
                for user, selector, name in (("hr_acme", '[data-testid="stMetric"]', "hr_overview"),
                                             ("provider", '[data-testid="stMetric"]', "provider_uptake"),
                                             ("privacy", '[data-testid="stMetric"]', "privacy_budget")):
                    await cdp.sign_in(url, user, PASSWORDS[user])
                    await cdp.settle(selector, count=3)
                    texts[name] = await cdp.js("document.body.innerText")
                    exceptions = await cdp.js("document.querySelectorAll('[data-testid=\"stException\"]').length")
                    assert exceptions == 0, texts[name][:2000]
                    await cdp.screenshot(ARTIFACTS / f"{name}.png")
                    if user == "hr_acme":
                        for link, page in (("Trends", "hr_trends"), ("Breakdown", "hr_breakdown")):
                            await cdp.click_link(link)
                            await cdp.settle(".vega-embed", count=1)
                            texts[page] = await cdp.js("document.body.innerText")
                            await cdp.screenshot(ARTIFACTS / f"{page}.png")
                return texts

        texts = asyncio.run(asyncio.wait_for(drive(), timeout=180))
    finally:
        for proc in (browser, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        log.close()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)

    overview = texts["hr_overview"]
    assert "Overview" in overview and "Engaged employees" in overview and "4,321" in overview
    assert "globex" not in overview and "8,765" not in overview
    assert "Trends" in texts["hr_trends"] and "Breakdown" in texts["hr_breakdown"]
    assert "hidden — too few people to show reliably" in texts["hr_breakdown"] or "Small teams" not in texts["hr_breakdown"]
    assert "Uptake across customers" in texts["provider_uptake"]
    assert "Privacy budget" in texts["privacy_budget"]
    assert (ARTIFACTS / "hr_overview.png").stat().st_size > 10_000
