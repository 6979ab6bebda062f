"""``wellbeing shards migrate`` and ``wellbeing shards upload``.

``migrate`` moves a legacy single raw store into per-customer shards now. Ingest, releases and
retention do it on their own the first time they run; this runs it on purpose (e.g. in a
maintenance window) and prints the rows moved per customer and table.

``upload`` moves the local shards into the shard bucket (``WELLBEING_SHARD_BUCKET``), once.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "shards", help="per-customer shards: migrate a legacy raw.duckdb; upload them to the shard bucket"
    )
    verbs = parser.add_subparsers(dest="shards_verb", required=True, metavar="{migrate,upload}")
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
    upload = verbs.add_parser(
        "upload",
        help="move the local shards and catalog into the shard bucket (WELLBEING_SHARD_BUCKET), once",
        description=(
            "Upload every live customer shard, then the catalog, from $WELLBEING_HOME/shards to the bucket named "
            "by WELLBEING_SHARD_BUCKET; from then on runs fetch from and upload to the bucket. Refused when the "
            "bucket already holds a catalog. Run it while no run is in progress; interrupted, run it again."
        ),
    )
    upload.set_defaults(func=run_upload)


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


def run_upload(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings
    from pipeline.shards import upload_local

    settings = Settings.from_env()
    shards = upload_local(settings)
    print(f"uploaded {len(shards)} customer shard(s) and the catalog to {settings.shard_bucket}")
    return 0
