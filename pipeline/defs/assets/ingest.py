"""Ingest assets: landing files → raw events (+ quarantine) in the encrypted raw store.

Privacy: materialization metadata and logs carry counts, file names and contract
rule texts only, never a row value. All raw-store writers run in the
``duckdb_writer`` pool (DuckDB allows one writer process). After a delivery, the ingest
registers its customers and the months that can now be released as partitions
(:mod:`pipeline.defs.partitions`).
"""

from pathlib import Path

import dagster as dg

from pipeline.defs.checks import NO_REFUSED_FILES_CHECK, RAW_EVENTS_CHECK_SPECS
from pipeline.defs.partitions import CUSTOMERS, MONTHS, month_key
from pipeline.defs.resources import LandingZone, RawStoreResource
from pipeline.ingest import ingest_files
from pipeline.settings import Settings

WRITER_POOL = "duckdb_writer"
GROUP = "ingest"


def register_months(instance: dg.DagsterInstance, settings: Settings) -> list[str]:
    """Add the months the raw store can now release (public facts only) as ``months`` partitions."""
    from pipeline.releases.lifecycle import catalog_releasable_months

    months = [month_key(m) for m in catalog_releasable_months(settings)]  # the shard catalog only
    known = set(instance.get_dynamic_partitions(MONTHS))
    new = [m for m in months if m not in known]
    if new:
        instance.add_dynamic_partitions(MONTHS, new)
    return new


class LandingSelection(dg.Config):
    """Which landing files a run ingests: names inside the landing folder; empty means all present."""

    files: list[str] = []


@dg.asset(group_name=GROUP, kinds={"file"}, owners=["team:data"])
def landing_files(context: dg.AssetExecutionContext, config: LandingSelection, landing: LandingZone) -> list[str]:
    """Provider deliveries waiting in the landing folder (paths only; contents are read by raw_events)."""
    present = {p.name: p for p in landing.files()}
    if config.files:
        missing = sorted(set(config.files) - present.keys())
        if missing:
            context.log.warning(f"not in the landing folder (already ingested?): {', '.join(missing)}")
        chosen = [present[n] for n in config.files if n in present]
    else:
        chosen = list(present.values())
    context.add_output_metadata({"file_count": len(chosen), "file_names": [p.name for p in chosen]})
    return [str(p) for p in chosen]


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb"},
    pool=WRITER_POOL,
    check_specs=RAW_EVENTS_CHECK_SPECS,
    owners=["team:data"],
)
def raw_events(
    context: dg.AssetExecutionContext, landing_files: list[str], raw_store: RawStoreResource
) -> dg.MaterializeResult:
    """Pseudonymised provider events in the encrypted raw store; individual records, never released as such."""
    reports, refused = ingest_files(raw_store.settings(), [Path(p) for p in landing_files])
    for refusal in refused:  # refusal texts name files and columns only
        context.log.warning(str(refusal))
    customers = sorted({c for r in reports for c in r.customers})
    known = set(context.instance.get_dynamic_partitions(CUSTOMERS))
    new = [c for c in customers if c not in known]
    if new:
        context.instance.add_dynamic_partitions(CUSTOMERS, new)
    new_months = register_months(context.instance, raw_store.settings()) if reports else []
    per_file = {
        r.path.name: {
            "kind": r.kind,
            "rows": r.rows_total,
            "accepted": r.accepted,
            "quarantined": r.quarantined,
            "duplicate": r.duplicate,
            "replaced": r.replaced,
        }
        for r in reports
    }
    return dg.MaterializeResult(
        metadata={
            "files_ingested": len(reports),
            "files_refused": len(refused),
            "rows_accepted": sum(r.accepted for r in reports),
            "rows_quarantined": sum(r.quarantined for r in reports),
            "rows_duplicate": sum(r.duplicate for r in reports),
            "rows_replaced": sum(r.replaced for r in reports),
            "new_customer_partitions": len(new),
            "new_month_partitions": len(new_months),
            "ingested_file_names": [r.path.name for r in reports],
            "refused_file_names": [r.path.name for r in refused],
            "per_file_counts": dg.MetadataValue.json(per_file),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_REFUSED_FILES_CHECK,
                passed=not refused,
                metadata={"refused_file_names": [r.path.name for r in refused]},
            )
        ],
    )


@dg.asset(group_name=GROUP, kinds={"duckdb"}, pool=WRITER_POOL, deps=[raw_events], owners=["team:data"])
def quarantine(context: dg.AssetExecutionContext, raw_store: RawStoreResource) -> dg.MaterializeResult:
    """Rows refused by the contract's row rules: file, row number, column and reason; no values are kept."""
    con = raw_store.connect()
    try:
        (total, rows, files) = con.execute(
            "SELECT count(*), count(DISTINCT (delivery_id, row_number)), count(DISTINCT file_name) FROM quarantine"
        ).fetchone() or (0, 0, 0)
        by_reason = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 1").fetchall())
    finally:
        con.close()
    return dg.MaterializeResult(
        metadata={
            "quarantine_entries": int(total),
            "quarantined_rows": int(rows),
            "files_with_quarantine": int(files),
            "entries_by_reason": dg.MetadataValue.json(by_reason),
        }
    )
