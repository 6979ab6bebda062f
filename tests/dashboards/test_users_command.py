"""`wellbeing users` writes bcrypt-hashed accounts that the dashboards accept."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from streamlit_authenticator.utilities.hasher import Hasher

from pipeline.cli import main
from stores.accounts import load_accounts, principal_for
from stores.principal import Principal


def test_add_hr_account_with_password_from_stdin(wb_home: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["users", "add", "anna", "--role", "hr", "--customer", "acme", "--password-stdin"]) == 0
    path = wb_home / "auth.yaml"
    raw = yaml.safe_load(path.read_text())
    stored = raw["credentials"]["usernames"]["anna"]
    assert stored["password"] != "a-long-password" and stored["password"].startswith("$2")
    assert Hasher.check_pw("a-long-password", stored["password"])
    assert path.stat().st_mode & 0o077 == 0
    assert principal_for(load_accounts(path), "anna") == Principal("anna", "hr", "acme")
    assert main(["users", "list"]) == 0
    assert "anna" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["users", "add", "bob", "--role", "hr", "--password-stdin"], "a-long-password\n", "--customer"),
        (
            ["users", "add", "bob", "--role", "provider", "--customer", "acme", "--password-stdin"],
            "a-long-password\n",
            "do not pass --customer",
        ),
        (["users", "add", "bob", "--role", "hr", "--customer", "acme", "--password-stdin"], "short\n", "at least 8"),
        (["users", "add", "b b", "--role", "provider", "--password-stdin"], "a-long-password\n", "not valid"),
    ],
)
def test_bad_accounts_are_refused(wb_home: Path, monkeypatch: pytest.MonkeyPatch, capsys, argv, stdin, message) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (wb_home / "auth.yaml").exists()


def test_demo_accounts_cover_all_roles(wb_home: Path, capsys) -> None:
    assert main(["users", "demo", "--customers", "acme", "globex"]) == 0
    out = capsys.readouterr().out
    config = load_accounts(wb_home / "auth.yaml")
    users = config["credentials"]["usernames"]
    assert set(users) == {"hr_acme", "hr_globex", "provider", "privacy"}
    for username, account in users.items():
        line = next(l for l in out.splitlines() if l.strip().startswith(username + " "))
        password = line.split()[1]
        assert Hasher.check_pw(password, account["password"])
    assert principal_for(config, "privacy") == Principal("privacy", "privacy_officer", None)
