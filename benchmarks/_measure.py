"""Shared benchmark helpers: run a function or a command in a fresh child process and measure it.

Each measurement runs in its own process so that its peak memory is its own:
the peak RSS comes from ``os.wait4`` on that child (``ru_maxrss``, the
per-child form of ``getrusage(RUSAGE_CHILDREN)``), which covers DuckDB's and
Polars' native allocations, not only Python objects.

Use from a benchmark script::

    from _measure import run_call, run_command, verdict, print_table

    m = run_call("bench_ingest:child_ingest", str(home), [str(path)])
    print(m.wall_s, m.peak_rss_gb, m.result)

``run_call`` imports ``module:function`` in the child (the repository root and
``benchmarks/`` are on its ``sys.path``), calls it with JSON-able arguments and
returns its JSON-able result; ``wall_s`` is the time of the call itself (imports
excluded), ``process_s`` the whole child. ``run_command`` runs any argv
(e.g. ``[".venv/bin/wellbeing", "ingest", ...]``); there ``wall_s == process_s``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

GB = 1024**3


class ChildFailed(RuntimeError):
    """The measured child exited with an error; its stderr tail is in the message."""


@dataclass(frozen=True)
class Measurement:
    label: str
    wall_s: float  # time of the measured call (run_call) or of the whole process (run_command)
    process_s: float  # the whole child process, interpreter start included
    peak_rss_bytes: int  # peak resident set size of the child
    returncode: int
    result: Any = None  # JSON result of run_call
    cpu_s: float = 0.0  # user + system CPU of the whole child: less sensitive than wall time to other load

    @property
    def peak_rss_gb(self) -> float:
        return self.peak_rss_bytes / GB


def _maxrss_bytes(ru_maxrss: int) -> int:
    # Linux reports kilobytes, macOS bytes.
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def _spawn_and_wait(
    argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: Path | None, timeout: float | None, quiet: bool
) -> tuple[int, float, int, float, str]:
    """Run argv; return (returncode, wall seconds, peak RSS bytes, CPU seconds, stderr tail)."""
    err = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=err,
    )
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if timer:
            timer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; keep Popen from waiting again
    err.seek(0)
    tail = err.read()[-4000:].decode("utf-8", "replace")
    err.close()
    return proc.returncode, wall, _maxrss_bytes(usage.ru_maxrss), usage.ru_utime + usage.ru_stime, tail


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment plus ``extra``; the repository root on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), str(BENCH_DIR), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def run_call(
    target: str,
    *args: Any,
    label: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> Measurement:
    """Call ``module:function(*args)`` in a fresh Python child and measure it."""
    with tempfile.TemporaryDirectory(prefix="wb-measure-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", target, json.dumps(list(args)), str(out)]
        code, wall, rss, cpu, tail = _spawn_and_wait(
            argv, env=child_env(env), cwd=REPO_ROOT, timeout=timeout, quiet=False
        )
        payload = json.loads(out.read_text()) if out.exists() else {}
    if code != 0 and check:
        raise ChildFailed(f"{label or target} failed with exit code {code}:\n{tail}")
    return Measurement(
        label=label or target,
        wall_s=float(payload.get("wall_s", wall)),
        process_s=wall,
        peak_rss_bytes=rss,
        returncode=code,
        result=payload.get("result"),
        cpu_s=cpu,
    )


def run_command(
    argv: Sequence[str],
    *,
    label: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    check: bool = True,
    quiet: bool = True,
) -> Measurement:
    """Run a command in a child process and measure its wall time and peak RSS."""
    code, wall, rss, cpu, tail = _spawn_and_wait(
        argv, env=child_env(env), cwd=cwd or REPO_ROOT, timeout=timeout, quiet=quiet
    )
    if code != 0 and check:
        raise ChildFailed(f"{label or argv[0]} failed with exit code {code}:\n{tail}")
    return Measurement(
        label=label or " ".join(argv), wall_s=wall, process_s=wall, peak_rss_bytes=rss, returncode=code, cpu_s=cpu
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def machine_summary() -> str:
    """One line describing the machine (benchmarks are only comparable on like machines)."""
    cores = os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
        mem_text = f"{mem:.1f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        mem_text = "RAM unknown"
    return f"{platform.platform()} · {cores} cores · {mem_text} · Python {platform.python_version()} · {load_summary()}"


def load_summary() -> str:
    """The 1-minute load average: above the core count, other work skews the figures."""
    try:
        return f"load avg {os.getloadavg()[0]:.2f}"
    except OSError:
        return "load avg unknown"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned text table on stdout."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _child_main(target: str, args_json: str, out: str) -> None:
    import importlib

    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    args = json.loads(args_json)
    start = time.perf_counter()
    result = func(*args)
    wall = time.perf_counter() - start
    Path(out).write_text(json.dumps({"wall_s": wall, "result": result}, default=str))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        for p in (str(REPO_ROOT), str(BENCH_DIR)):
            if p not in sys.path:
                sys.path.insert(0, p)
        _child_main(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print("usage: python benchmarks/_measure.py --child module:function ARGS_JSON RESULT_FILE", file=sys.stderr)
        sys.exit(2)
