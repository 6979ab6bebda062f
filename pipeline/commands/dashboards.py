"""``wellbeing dashboards``: start the Streamlit app on loopback with a key-free environment.

Privacy reason: the dashboard process must never hold the raw store's keys, so they are
removed from the environment handed to ``streamlit run`` (invariant 5).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from pipeline.keys import KEY_DIR_ENV, KEY_ENV_VARS
from pipeline.settings import Settings, object_storage_vars


def app_path() -> Path:
    """Absolute path of ``dashboards/app.py`` (found without importing the app)."""
    spec = importlib.util.find_spec("dashboards.app")  # locates the file; the app is not run
    if spec is None or spec.origin is None:
        raise RuntimeError("the dashboards package is not installed: run `pip install -e .` in the repository")
    return Path(spec.origin).resolve()


def dashboard_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the dashboard process: the caller's, minus every key, plus WELLBEING_HOME."""
    env = dict(os.environ if base is None else base)
    for var in (*KEY_ENV_VARS, KEY_DIR_ENV, *object_storage_vars(env)):  # not even where the key files or shards are
        env.pop(var, None)
    env["WELLBEING_HOME"] = str(settings.home)
    env["WELLBEING_RETENTION_MONTHS"] = str(settings.retention_months)
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    return env


def dashboard_argv(port: int, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.headless",
        "true",
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        # An uncaught exception shows users a generic message, never a traceback (paths, lock holders).
        "--client.showErrorDetails",
        "none",
        # No file watching in production: it polls every module path on each rerun and keeps
        # watcher threads busy (about 7 % of render time under load), for a feature (rerun on save)
        # that a deployed app never uses.
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        # No forced full garbage collection after every script run: gc.collect(2) walks the whole
        # heap while holding the GIL, which stalled every other session (a third of the script
        # threads' CPU under 20 sessions). Python's own generational collector still runs.
        "--runner.postScriptGC",
        "false",
        "--theme.primaryColor",
        "#0072B2",
    ]


def start_dashboards(settings: Settings, port: int = 8501, address: str = "127.0.0.1", **popen) -> subprocess.Popen:
    """Start the app in the background (used by ``wellbeing demo``); the caller owns the process.

    The caller's environment loses the keys first: it only waits for the server from now on.
    """
    drop_keys_from_environment()
    return subprocess.Popen(dashboard_argv(port, address), env=dashboard_env(settings), **popen)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboards", help="start the dashboards (Streamlit) on loopback")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1", help="bind address (default loopback)")
    parser.set_defaults(func=_run)


def drop_keys_from_environment() -> None:
    """Remove the keys from this process's environment (the parent waits while the server runs).

    Privacy reason: the parent of the dashboard server has no use for the keys while it
    waits, and a process that keeps them is one more place to read them from (``/proc``).
    """
    for var in (*KEY_ENV_VARS, *object_storage_vars(os.environ)):  # and where the shards are, how to reach them
        os.environ.pop(var, None)


def _run(args: argparse.Namespace) -> int:
    drop_keys_from_environment()
    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    if not settings.auth_file.exists():
        print("note: no dashboard accounts yet; create them with `wellbeing users add` or `wellbeing users demo`")
    print(f"dashboards: http://{args.address}:{args.port}  (Ctrl+C to stop)", flush=True)
    try:
        return subprocess.call(dashboard_argv(args.port, args.address), env=dashboard_env(settings))
    except KeyboardInterrupt:
        return 0
