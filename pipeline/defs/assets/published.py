"""The published store (``published.duckdb``): the only file the dashboards and exports read.

Downstream of every release: rebuilt from the raw store's stored draws (current version of
each customer-period), the authoritative ledger and the policy history, checked (no identifier
column, thresholds) and swapped in atomically by :func:`pipeline.releases.publish.publish`.
Rebuilding is deterministic (no noise is drawn here), so materializing it again changes nothing
but the file's identity. Metadata: row counts per table only.
"""

import dagster as dg

from pipeline.defs.assets.releases import customer_month_release
from pipeline.defs.resources import RawStoreResource
from pipeline.instance import PUBLISHED_POOL
from stores.published import PUBLISHED_TABLES

PUBLISHED_ASSET = "published_store"


@dg.asset(
    name=PUBLISHED_ASSET,
    deps=[customer_month_release],
    pool=PUBLISHED_POOL,  # one file, rebuilt and swapped in: one rebuild at a time across all runs
    group_name="releases",
    kinds={"duckdb"},
    owners=["team:privacy"],
)
def published_store(context: dg.AssetExecutionContext, raw_store: RawStoreResource) -> dg.MaterializeResult:
    """Aggregates only (releases, cells, ledger copy, policy history, public headcount), rebuilt and swapped in."""
    import duckdb

    from pipeline.releases.publish import merge_published
    from pipeline.shards import ensure_migrated

    settings = raw_store.settings()
    ensure_migrated(settings)
    path = merge_published(settings)  # every customer's published part; no shard is opened
    reader = duckdb.connect(str(path), read_only=True)
    try:
        counts = {}
        for table in PUBLISHED_TABLES:
            row = reader.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[f"{table}_rows"] = int(row[0]) if row else 0
    finally:
        reader.close()
    context.log.info(f"published store rebuilt: {counts['releases_rows']} current release(s)")
    return dg.MaterializeResult(metadata={**counts, "bytes": path.stat().st_size})
