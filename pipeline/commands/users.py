"""``wellbeing users``: dashboard accounts in ``$WELLBEING_HOME/auth.yaml`` (bcrypt hashes).

``add USERNAME --role hr --customer C [--password-stdin]``, ``list``, and ``demo`` (one hr account
per customer in the raw store plus a provider and a privacy officer, with printed passwords).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from pipeline.errors import EXIT_BAD_INPUT, CommandError
from pipeline.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("users", help="manage dashboard accounts (auth.yaml)")
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    add = sub.add_parser("add", help="add or replace an account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=("hr", "provider", "privacy_officer"))
    add.add_argument("--customer", help="the one customer an hr account may see (required for --role hr)")
    add.add_argument("--name", help="display name")
    add.add_argument("--email", help="e-mail (used to match OIDC sign-ins)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=_add)

    lst = sub.add_parser("list", help="list accounts (no passwords)")
    lst.set_defaults(func=_list)

    demo = sub.add_parser("demo", help="create demo accounts and print their passwords")
    demo.add_argument(
        "--customers",
        nargs="*",
        default=None,
        help="customers to create hr accounts for (default: the customers in the raw store)",
    )
    demo.set_defaults(func=_demo)


def _auth_path() -> Path:
    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings.auth_file


def _add(args: argparse.Namespace) -> int:
    from stores.accounts import AccountError, add_user  # (imported when used: a light command-line start)

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    try:
        principal = add_user(
            _auth_path(), args.username, password, args.role, args.customer, name=args.name, email=args.email
        )
    except AccountError as exc:
        raise CommandError(str(exc), EXIT_BAD_INPUT) from None
    scope = f" for customer {principal.customer_id}" if principal.customer_id else ""
    print(f"account {principal.username} ({principal.role}{scope}) saved in {_auth_path()}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from stores.accounts import AccountError, list_users

    try:
        users = list_users(_auth_path())
    except AccountError as exc:
        raise CommandError(str(exc), EXIT_BAD_INPUT) from None
    if not users:
        print("no accounts yet: wellbeing users add USERNAME --role ...")
        return 0
    for u in users:
        print(f"{u['username']:<24} {u['role']:<16} {u['customer_id'] or '-'}")
    return 0


def demo_accounts(customers: list[str] | tuple[str, ...]) -> list[tuple[str, str, str, str | None]]:
    """Create demo accounts; returns (username, password, role, customer) for printing."""
    from stores.accounts import AccountError, add_user, generate_password

    path = _auth_path()
    created = []
    specs = [(f"hr_{c}", "hr", c) for c in customers] + [
        ("provider", "provider", None),
        ("privacy", "privacy_officer", None),
    ]
    for username, role, customer in specs:
        password = generate_password()
        try:
            add_user(path, username, password, role, customer)
        except AccountError as exc:
            raise CommandError(f"demo account {username}: {exc}", EXIT_BAD_INPUT) from None
        created.append((username, password, role, customer))
    return created


def existing_customers(settings: Settings) -> list[str]:
    """The customers in the raw store (employers' ids; no personal data); empty when there is no store."""
    from pipeline.shards import customers, store_exists

    if not store_exists(settings):
        return []
    return customers(settings)


def _demo(args: argparse.Namespace) -> int:
    customers = tuple(args.customers) if args.customers else tuple(existing_customers(Settings.from_env()))
    if not customers:
        print(
            "note: no customers in the raw store yet: only the provider and privacy officer accounts "
            "(ingest a headcount file, or pass --customers)"
        )
    print("demo dashboard accounts (passwords are shown once; re-run to reset them):")
    for username, password, role, customer in demo_accounts(customers):
        scope = f" ({customer})" if customer else ""
        print(f"  {username:<20} {password:<20} {role}{scope}")
    return 0
