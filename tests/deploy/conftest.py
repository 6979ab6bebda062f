"""Deployment fixtures: a throwaway PostgreSQL server (Debian's binaries) and an ingested home.

The server runs from ``initdb`` + ``pg_ctl`` in a temporary folder on a free loopback port,
password authentication (scram), and is stopped and deleted after the session. PostgreSQL
refuses to run as root: as root (CI containers) the server runs as the ``postgres`` system user
that Debian's package creates. ``.ci/run`` installs the ``postgresql`` package; the tests that
need the server are skipped, with the reason, only where its binaries are absent.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_helpers import CUSTOMERS, Postgres, free_port, pg_bin_dir

from pipeline.keys import KEY_ENV_VARS
from pipeline.settings import Settings


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg_bin = pg_bin_dir()
    if pg_bin is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed here: apt-get install postgresql")
    prefix: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use Debian's postgres system user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    data, password = root / "data", secrets.token_urlsafe(16)
    (root / "pw").write_text(password, encoding="utf-8")
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(root / "pw", owner.pw_uid, owner.pw_gid)
    port = free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    run(str(pg_bin / "initdb"), "-D", str(data), "-U", "dagster", "--pwfile", str(root / "pw"),
        "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")  # fmt: skip
    run(str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c fsync=off "
        "-c synchronous_commit=off -c max_connections=200", "start")  # fmt: skip
    try:
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=port, user="dagster", password=password, dbname="postgres")
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("CREATE DATABASE dagster")
        con.close()
        yield Postgres("127.0.0.1", port, "dagster", password, "dagster")
    finally:
        subprocess.run([*prefix, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def ingested_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with 2 customers × 4 months (2025-01..04) generated and ingested by the real code."""
    from pipeline.ingest import ingest_files
    from pipeline.synthetic import generate

    base = tmp_path_factory.mktemp("deploy-home")
    saved = {v: os.environ.pop(v) for v in KEY_ENV_VARS if v in os.environ}
    saved_key_dir = os.environ.pop("WELLBEING_KEY_DIR", None)
    try:
        files = generate(base / "gen", customers=2, employees=800, months=4, seed=5, start="2025-01")
        assert tuple(files.customers) == CUSTOMERS
        home = base / "home"
        reports, refused = ingest_files(Settings.from_env(home), [*files.events, *files.headcounts])
        assert not refused and reports
    finally:
        os.environ.update(saved)
        if saved_key_dir is not None:
            os.environ["WELLBEING_KEY_DIR"] = saved_key_dir
    return home
