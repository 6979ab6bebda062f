"""``wellbeing shards migrate``: move a legacy single raw store into per-customer shards now.

Ingest, releases and retention do it on their own the first time they run; this runs it on
purpose (e.g. in a maintenance window) and prints the rows moved per customer and table.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("shards", help="per-customer shards: migrate a legacy raw.duckdb")
    verbs = parser.add_subparsers(dest="shards_verb", required=True, metavar="migrate")
    migrate = verbs.add_parser(
        "migrate",
        help="move raw.duckdb into per-customer encrypted shards (verified; safe to run again)",
        description=(
            "Copy each customer's rows of the legacy raw store into its own encrypted shard (pseudonyms and "
            "ids as they are, every ledger row and stored draw), verify the row counts per table and "
            "customer, then delete raw.duckdb. Interrupted, run it again."
        ),
    )
    migrate.set_defaults(func=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings
    from pipeline.shards import migrate_legacy

    settings = Settings.from_env()
    if not settings.raw_path.exists():
        print("nothing to migrate: no legacy raw store (raw.duckdb)")
        return 0
    migration = migrate_legacy(settings)
    for customer, counts in sorted(migration.counts.items()):
        moved = ", ".join(f"{t} {n}" for t, n in counts.items() if n)
        print(f"{customer}: {moved or 'no rows'}")
    print(f"migrated {migration.customers} customer(s) into shards; raw.duckdb deleted")
    return 0
