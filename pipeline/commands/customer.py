"""``wellbeing customer list`` / ``customer remove C --yes``: customers' shards, and crypto-shredding one.

Privacy reason: ``remove`` destroys the customer's key share first, then deletes its shard file, so
no copy of the file (a backup, a stolen disk) can be decrypted afterwards, even with the master key;
the catalog records who removed whom and when (no data), and the customer's releases leave the
published store at once. Other customers are untouched.
"""

from __future__ import annotations

import argparse

from pipeline.errors import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("customer", help="list customers and their shards; remove (crypto-shred) one")
    verbs = parser.add_subparsers(dest="customer_verb", required=True, metavar="list|remove")
    listing = verbs.add_parser("list", help="customer, shard id, events stored, created (no personal data)")
    listing.set_defaults(func=run_list)
    remove = verbs.add_parser(
        "remove",
        help="destroy a customer's key share and shard (irreversible); its releases leave the published store",
        description=(
            "Crypto-shred one customer: its key share is destroyed, then its shard file is deleted; the "
            "removal (who, when, customer, shard id) is recorded in the catalog and the customer's releases "
            "are removed from the published store. Irreversible: even a backup of the shard cannot be "
            "opened afterwards. Other customers are untouched."
        ),
    )
    remove.add_argument("customer", metavar="C", help="customer id")
    remove.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    remove.add_argument("--removed-by", metavar="NAME", help="who removes it (default: $USER)")
    remove.set_defaults(func=run_remove)


def run_list(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings
    from pipeline.shards import customer_list, store_exists

    settings = Settings.from_env()
    if not store_exists(settings):
        print("no customers yet: ingest a headcount file first (wellbeing ingest FILE)")
        return 0
    rows = customer_list(settings)
    if not rows:
        print("no customers")
        return 0
    print(f"{'customer':<28} {'shard':<34} {'events':>10}  created")
    for r in rows:
        events = "unreadable" if r.events is None else f"{r.events:,}"
        print(f"{r.customer_id:<28} {r.shard_id:<34} {events:>10}  {r.created_at:%Y-%m-%d %H:%M}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from pipeline.commands.release import default_requester
    from pipeline.settings import Settings
    from pipeline.shards import UnknownCustomer, remove_customer

    if not args.yes:
        raise CommandError(
            f"customer remove {args.customer} destroys its data for good (its key share and shard file): "
            "add --yes to confirm"
        )
    settings = Settings.from_env()
    try:
        removal = remove_customer(settings, args.customer, removed_by=args.removed_by or default_requester())
    except UnknownCustomer as exc:
        raise CommandError(str(exc)) from None
    print(
        f"customer {removal.customer_id} removed: key share destroyed, shard {removal.shard_id} deleted, "
        f"its releases removed from {settings.published_path}; recorded in the catalog "
        f"({removal.removed_by}, {removal.removed_at:%Y-%m-%d %H:%M} UTC)"
    )
    return 0
