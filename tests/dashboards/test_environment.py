"""The dashboard process never holds the raw store's keys, and dashboards/ cannot reach the raw store."""

from __future__ import annotations

import ast
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.commands.dashboards import app_path, dashboard_argv, dashboard_env, start_dashboards
from pipeline.keys import KEY_ENV_VARS
from pipeline.settings import SHARD_BUCKET_ENV, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_dashboard_env_drops_every_key(wb_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in KEY_ENV_VARS:
        monkeypatch.setenv(var, "x" * 40)
    env = dashboard_env(Settings.from_env())
    assert not set(KEY_ENV_VARS) & set(env)
    assert env["WELLBEING_HOME"] == str(wb_home.resolve())
    argv = dashboard_argv(8599, "127.0.0.1")
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert Path(argv[argv.index("run") + 1]) == app_path() and app_path().exists()


def test_dashboard_env_drops_the_shard_bucket_and_its_credentials(
    wb_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invariant 5 with shards in object storage: not where they are, not how to reach them."""
    monkeypatch.setenv(SHARD_BUCKET_ENV, "s3://wellbeing-shards-prod/prod")
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_TOKEN", "AWS_SSE_CUSTOMER_KEY_BASE64",
             "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN", "GOOGLE_BEARER_TOKEN")  # fmt: skip
    for var in names:  # every variable obstore reads has one of these prefixes
        monkeypatch.setenv(var, "credential")
    env = dashboard_env(Settings.from_env())
    assert not {SHARD_BUCKET_ENV, *names} & set(env)
    assert not any(value in ("credential", "s3://wellbeing-shards-prod/prod") for value in env.values())


def test_started_dashboard_process_has_no_key_in_its_environment(
    wb_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in KEY_ENV_VARS:
        monkeypatch.setenv(var, "secret-key-material-" + var)
    wb_home.mkdir(parents=True, exist_ok=True)
    proc = start_dashboards(
        Settings.from_env(), port=_free_port(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(0.3)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        names = {item.split(b"=", 1)[0].decode() for item in environ if item}
        assert "WELLBEING_HOME" in names
        assert not set(KEY_ENV_VARS) & names
        assert not any(b"secret-key-material" in item for item in environ)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboards_never_reference_the_raw_store_or_import_the_pipeline() -> None:
    for path in sorted((ROOT / "dashboards").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for needle in (
            "raw.duckdb",
            "raw_store",
            "raw.key",
            "pseudonym.key",
            "RAW_KEY",
            "PSEUDONYM_KEY",
            "ENCRYPTION_KEY",
        ):
            assert needle not in text, f"{path.relative_to(ROOT)} mentions {needle}"
        for node in ast.walk(ast.parse(text)):
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                assert module.split(".")[0] not in ("pipeline", "dagster", "opendp"), f"{path.name} imports {module}"


def test_published_reads_are_read_only(dash_home: Path) -> None:
    """The data layer's connection refuses writes (and a writer can work right after a read)."""
    import duckdb

    from dashboards import data
    from stores.principal import Principal

    frame = data.cells(Principal("provider", "provider", None), dimensions=["total"])
    assert not frame.is_empty()
    # no connection is left open: a read-write open of the same file succeeds at once
    con = duckdb.connect(str(dash_home / "published.duckdb"))
    con.close()
    src = (ROOT / "dashboards" / "data.py").read_text()
    assert "read_only=True" in src


def test_the_next_read_after_a_publish_shows_the_new_release(dash_home: Path, tmp_path: Path) -> None:
    """A publish swaps in a new file; the next render must read it, even while another session of the
    same process still has the old file open (DuckDB would hand a new connection that old instance)."""
    import os

    import duckdb
    from published_factory import write_published_store

    from dashboards import data
    from stores.principal import Principal

    hr = Principal("hr_acme", "hr", "acme")

    def latest_total() -> float:
        cells = data.cells(hr, "acme", dimensions=["total"], metrics=["engaged_employees"])
        return float(cells.sort("period")["value"][-1])

    first = latest_total()
    path = dash_home / "published.duckdb"
    other_session = duckdb.connect(str(path), read_only=True)  # the old file stays open in this process
    try:
        staged = write_published_store(
            tmp_path / "staged.duckdb", ["acme", "globex"], 18, marker_values={"acme": 1234.0}
        )
        os.replace(staged, path)  # the pipeline's atomic publish
        assert latest_total() == 1234.0 != first
    finally:
        other_session.close()
