"""A minimal Streamlit websocket client that speaks the protocol a browser tab speaks.

Used by the load test (``test_load_dashboards.py``) and ``benchmarks/bench_dashboards_load.py``:
each :class:`Session` is one browser tab. It opens ``/_stcore/stream`` (subprotocol ``streamlit``,
an ``Origin`` header, the tab's cookies), sends ``BackMsg.rerun_script`` with a ``ClientState``
(page URL path, widget states) and reads ``ForwardMsg``s until ``script_finished``. Widgets are
found by label in the ``delta.new_element`` messages, exactly the ids the browser would send back.

Render time = from sending the rerun request to the ``script_finished`` message that ends the
run successfully (what a user waits for before the page stops its "running" indicator).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

FINISHED = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")
RERUN = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
WIDGETS = ("text_input", "button", "selectbox", "download_button", "checkbox", "radio", "slider", "number_input")


class RenderFailed(AssertionError):
    """A run ended with an exception element, a compile error, or not at all."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> str:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return str(resp.read().decode())
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s ({last})")


@dataclass
class Render:
    """What one script run sent: texts, widgets by label, exceptions, and how long it took."""

    seconds: float = 0.0
    texts: list[str] = field(default_factory=list)
    widgets: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (kind, id)
    exceptions: list[str] = field(default_factory=list)
    page_not_found: bool = False
    pages: dict[str, str] = field(default_factory=dict)  # url path -> page script hash
    cookies_js: list[str] = field(default_factory=list)  # html bodies that set cookies

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def _element_text(kind: str, el: Any) -> str:
    if kind == "markdown":
        return str(el.body)
    if kind == "heading":
        return str(el.body)
    if kind == "alert":
        return str(el.body)
    if kind == "metric":
        return f"{el.label} {el.body}"
    if kind == "text":
        return str(el.body)
    if kind == "exception":
        return f"{el.type}: {el.message}"
    return ""


class Session:
    """One browser tab: a websocket to the app, its cookies, and the page it is on."""

    def __init__(self, port: int, *, cookies: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        self.port = port
        self.cookies: dict[str, str] = dict(cookies or {})
        self.timeout = timeout
        self.ws: Any = None

    async def __aenter__(self) -> Session:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/_stcore/stream",
            subprotocols=["streamlit"],  # type: ignore[list-item]
            origin=f"http://127.0.0.1:{self.port}",  # type: ignore[arg-type]
            additional_headers=headers,
            max_size=64 * 1024 * 1024,
            open_timeout=self.timeout,
            ping_interval=None,
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def reload(self) -> None:
        """What a browser reload does: a new websocket (a new Streamlit session) with the tab's cookies."""
        await self.close()
        await self.connect()

    async def render(self, page: str = "", widgets: list[Any] | None = None, query: str = "") -> Render:
        """Ask for one run of ``page`` (its URL path; "" = the default page) and wait until it finishes."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = query
        cs.page_name = page
        cs.context_info.timezone = "UTC"
        cs.context_info.locale = "en-GB"
        cs.context_info.url = f"http://127.0.0.1:{self.port}/{page}"
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        return await self._read_run(start)

    async def _read_run(self, start: float) -> Render:
        out = Render()
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RenderFailed(f"no script_finished within {self.timeout} s; seen: {out.text[:500]!r}")
            try:
                data = await asyncio.wait_for(self.ws.recv(), timeout=remaining)
            except TimeoutError:
                raise RenderFailed(f"no script_finished within {self.timeout} s; seen: {out.text[:500]!r}") from None
            fwd = ForwardMsg()
            fwd.ParseFromString(data)
            kind = fwd.WhichOneof("type")
            if kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                el = fwd.delta.new_element
                ek = el.WhichOneof("type")
                if ek is None:
                    continue
                sub = getattr(el, ek)
                if ek == "exception":
                    out.exceptions.append(_element_text(ek, sub))
                if ek == "html":
                    out.cookies_js.append(str(sub.body))
                text = _element_text(ek, sub)
                if text:
                    out.texts.append(text)
                if ek in WIDGETS:
                    out.widgets[str(sub.label)] = (ek, str(sub.id))
            elif kind == "navigation":
                for p in fwd.navigation.app_pages:
                    if not p.is_hidden:  # what the sidebar shows
                        out.pages[str(p.url_pathname)] = str(p.page_script_hash)
            elif kind == "page_not_found":
                out.page_not_found = True
            elif kind == "script_finished":
                if fwd.script_finished == RERUN:
                    continue
                out.seconds = time.perf_counter() - start
                if fwd.script_finished != FINISHED:
                    raise RenderFailed(f"run ended with status {fwd.script_finished}")
                return out

    async def sign_in(self, username: str, password: str, page: str = "") -> Render:
        """Fill the sign-in form and submit it, as a user does (the page must show the form)."""
        form = await self.render(page)
        return await self.submit_login(form, username, password, page)

    async def submit_login(self, form: Render, username: str, password: str, page: str = "") -> Render:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        try:
            user_id = form.widgets["Username"][1]
            pw_id = form.widgets["Password"][1]
            submit = next(
                wid for label, (kind, wid) in form.widgets.items() if kind == "button" and label in ("Login", "Sign in")
            )
        except (KeyError, StopIteration):
            raise RenderFailed(f"no sign-in form on the page: {form.text[:500]!r}") from None
        states = []
        for wid, value in ((user_id, username), (pw_id, password)):
            w = WidgetState(id=wid)
            w.string_value = value
            states.append(w)
        states.append(WidgetState(id=submit, trigger_value=True))
        return await self.render(page, states)


def set_cookies_from(render: Render, jar: dict[str, str]) -> None:
    """Apply the ``document.cookie = "..."`` assignments the app sent in an html element (as the browser would)."""
    import re

    for body in render.cookies_js:
        for raw in re.findall(r"document\.cookie\s*=\s*\"([^\"]+)\"", body):
            c: SimpleCookie = SimpleCookie()
            c.load(raw)
            for name, morsel in c.items():
                if morsel.get("max-age") == "0" or not morsel.value:
                    jar.pop(name, None)
                else:
                    jar[name] = morsel.value


# --------------------------------------------------------------------------- load driver


@dataclass
class LoadResult:
    sessions: int
    renders: list[float] = field(default_factory=list)  # seconds per render (after sign-in)
    by_page: dict[str, list[float]] = field(default_factory=dict)  # page URL path -> seconds
    sign_ins: list[float] = field(default_factory=list)
    wall: float = 0.0  # seconds of the render phase
    publishes: int = 0
    errors: list[str] = field(default_factory=list)
    new_visitor: float = 0.0
    expected: int = 0  # renders the signed-in tabs were to make
    cpu: float = 0.0  # CPU seconds the server spent during the render phase (when a probe is given)

    def pct(self, q: float) -> float:
        data = sorted(self.renders)
        if not data:
            return float("nan")
        k = min(len(data) - 1, max(0, round(q * (len(data) - 1))))
        return data[k]

    def page_table(self) -> str:
        """Per page: renders, p50, p95, max (slowest p95 first)."""
        rows = []
        for page, xs in self.by_page.items():
            xs = sorted(xs)
            rows.append((xs[round(0.95 * (len(xs) - 1))], page, len(xs), xs[len(xs) // 2], xs[-1]))
        return "\n".join(
            f"        {page:<18} {n:>4} renders  p50 {p50:.3f} s  p95 {p95:.3f} s  max {mx:.3f} s"
            for p95, page, n, p50, mx in sorted(rows, reverse=True)
        )

    @property
    def throughput(self) -> float:
        return len(self.renders) / self.wall if self.wall else 0.0

    def summary(self) -> str:
        return (
            f"{self.sessions:>3} sessions: {len(self.renders):>4} renders, p50 {self.pct(0.5):.3f} s, "
            f"p95 {self.pct(0.95):.3f} s, max {max(self.renders, default=float('nan')):.3f} s, "
            f"{self.throughput:.1f} renders/s, sign-in p50 {sorted(self.sign_ins)[len(self.sign_ins) // 2]:.2f} s, "
            f"{self.publishes} publishes, new visitor {self.new_visitor:.2f} s, {len(self.errors)} errors"
        )


def _swap_in(source: Any, target: Any) -> None:
    """Publish like the pipeline: write beside the target, then ``os.replace`` (atomic swap, new inode)."""
    import os
    import shutil

    tmp = target.with_name(target.name + ".publishing")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


async def run_load(
    port: int,
    users: list[tuple[str, str]],
    sessions: int,
    rounds: int,
    *,
    published: Any = None,
    versions: list[Any] | None = None,
    publish_every: float = 0.5,
    timeout: float = 60.0,
    cpu_probe: Any = None,
) -> LoadResult:
    """``sessions`` tabs (users taken round-robin) sign in, then render every page of their role ``rounds`` times
    while ``versions`` of the published store are swapped into ``published`` every ``publish_every`` seconds."""
    result = LoadResult(sessions=sessions)
    stop = asyncio.Event()

    async def publisher() -> None:
        i = 0
        while not stop.is_set() and published is not None and versions:
            await asyncio.to_thread(_swap_in, versions[i % len(versions)], published)
            result.publishes += 1
            i += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=publish_every)

    go = asyncio.Event()
    arrived = 0

    def arrive() -> None:
        nonlocal arrived
        arrived += 1
        if arrived == sessions:
            go.set()

    async def tab(n: int) -> None:
        username, password = users[n % len(users)]
        session = Session(port, timeout=timeout)
        try:
            await session.connect()
            t0 = time.perf_counter()
            signed = await session.sign_in(username, password)
            result.sign_ins.append(time.perf_counter() - t0)
            pages = [p for p in signed.pages if p != "notice"] or [""]
            if signed.exceptions or username not in signed.text:
                result.errors.append(f"{username}: sign-in failed: {signed.exceptions or signed.text[:300]!r}")
                arrive()
                return
            result.expected += rounds * len(pages)
            arrive()
            await go.wait()
            for _ in range(rounds):
                for page in pages:
                    r = await session.render(page)
                    if r.exceptions:
                        result.errors.append(f"{username} {page or '/'}: {r.exceptions}")
                    if "Traceback" in r.text:
                        result.errors.append(f"{username} {page or '/'}: traceback text")
                    result.renders.append(r.seconds)
                    result.by_page.setdefault(page or "/", []).append(r.seconds)
        except Exception as exc:  # a failed tab is a finding, not a crash of the driver
            result.errors.append(f"{username}#{n}: {type(exc).__name__}: {exc}")
            if not go.is_set():
                arrive()
        finally:
            await session.close()

    tasks = [asyncio.create_task(tab(n)) for n in range(sessions)]
    # Start the clock and the publisher once every tab has signed in (they then render together).
    await go.wait()
    cpu0 = cpu_probe() if cpu_probe else 0.0
    start = time.perf_counter()
    pub = asyncio.create_task(publisher())
    await asyncio.gather(*tasks)
    result.wall = time.perf_counter() - start
    result.cpu = (cpu_probe() - cpu0) if cpu_probe else 0.0
    stop.set()
    await pub
    # A new visitor is served afterwards: the sign-in page renders.
    t0 = time.perf_counter()
    async with Session(port, timeout=timeout) as visitor:
        first = await visitor.render("")
    result.new_visitor = time.perf_counter() - t0
    if "Password" not in first.widgets:
        result.errors.append(f"new visitor got no sign-in form: {first.text[:300]!r}")
    return result


class Server:
    """``wellbeing dashboards`` as the CLI starts it (same argv and key-free environment), on a free loopback port."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Any, log: Any) -> None:
        self.port = int(argv[argv.index("--server.port") + 1])
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)

    def __enter__(self) -> Server:
        try:
            assert wait_http(f"http://127.0.0.1:{self.port}/_stcore/health", 90, self.proc) == "ok"
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
