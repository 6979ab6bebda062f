"""Dagster definitions for ingest: landing files → raw events (+ quarantine), the landing sensor, retention.

Privacy: materialization metadata and logs carry counts, file names and contract
rule texts only, never a row value. All raw-store writers run in the
``duckdb_writer`` pool (DuckDB allows one writer process).
"""

import json
import time
from pathlib import Path

import dagster as dg

from pipeline.ingest import ingest_files
from pipeline.partitions import customers_partitions
from pipeline.resources import LandingZone, RawStoreResource
from pipeline.retention import purge_older_than

WRITER_POOL = "duckdb_writer"
GROUP = "ingest"


class LandingSelection(dg.Config):
    """Which landing files a run ingests: names inside the landing folder; empty means all present."""

    files: list[str] = []


@dg.asset(group_name=GROUP, kinds={"file"})
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
    check_specs=[dg.AssetCheckSpec("no_refused_files", asset="raw_events")],
)
def raw_events(
    context: dg.AssetExecutionContext, landing_files: list[str], raw_store: RawStoreResource
) -> dg.MaterializeResult:
    """Pseudonymised provider events in the encrypted raw store; individual records, never released as such."""
    reports, refused = ingest_files(raw_store.settings(), [Path(p) for p in landing_files])
    for refusal in refused:  # refusal texts name files and columns only
        context.log.warning(str(refusal))
    customers = sorted({c for r in reports for c in r.customers})
    known = set(context.instance.get_dynamic_partitions(customers_partitions.name))
    new = [c for c in customers if c not in known]
    if new:
        context.instance.add_dynamic_partitions(customers_partitions.name, new)
    per_file = {
        r.path.name: {"kind": r.kind, "rows": r.rows_total, "accepted": r.accepted, "quarantined": r.quarantined,
                      "duplicate": r.duplicate, "replaced": r.replaced}
        for r in reports
    }  # fmt: skip
    return dg.MaterializeResult(
        metadata={
            "files_ingested": len(reports),
            "files_refused": len(refused),
            "rows_accepted": sum(r.accepted for r in reports),
            "rows_quarantined": sum(r.quarantined for r in reports),
            "rows_duplicate": sum(r.duplicate for r in reports),
            "rows_replaced": sum(r.replaced for r in reports),
            "new_customer_partitions": len(new),
            "ingested_file_names": [r.path.name for r in reports],
            "refused_file_names": [r.path.name for r in refused],
            "per_file_counts": dg.MetadataValue.json(per_file),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="no_refused_files",
                passed=not refused,
                metadata={"refused_file_names": [r.path.name for r in refused]},
            )
        ],
    )


@dg.asset(group_name=GROUP, kinds={"duckdb"}, pool=WRITER_POOL, deps=[raw_events])
def quarantine(context: dg.AssetExecutionContext, raw_store: RawStoreResource) -> dg.MaterializeResult:
    """Rows refused by the contract's row rules: file, row number, column and reason; no values are kept."""
    con = raw_store.connect()
    try:
        (total, rows, files) = con.execute(
            "SELECT count(*), count(DISTINCT (delivery_id, row_number)), count(DISTINCT file_name) FROM quarantine"
        ).fetchone()  # type: ignore[misc]
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


ingest_job = dg.define_asset_job("ingest_job", selection=dg.AssetSelection.assets(landing_files, raw_events, quarantine))


@dg.sensor(job=ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_folder_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    """One ingest run per new or changed landing file; cursor = JSON {file name: mtime}.

    Files modified less than ``landing.settle_seconds`` ago are left for a later
    tick, so a delivery still being copied is not read half-written.
    """
    seen: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    current: dict[str, float] = {}
    requests: list[dg.RunRequest] = []
    for path in landing.files():
        mtime = path.stat().st_mtime
        if now - mtime < landing.settle_seconds:
            if path.name in seen:
                current[path.name] = seen[path.name]
            continue
        current[path.name] = mtime
        if seen.get(path.name) != mtime:
            requests.append(
                dg.RunRequest(
                    run_key=f"{path.name}:{mtime}",
                    run_config=dg.RunConfig(ops={"landing_files": LandingSelection(files=[path.name])}),
                )
            )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))


@dg.op(pool=WRITER_POOL)
def purge_expired_raw_data(context: dg.OpExecutionContext, raw_store: RawStoreResource) -> None:
    """Delete raw events, quarantine rows and archived files older than the retention window."""
    settings = raw_store.settings()
    report = purge_older_than(settings, settings.retention_months)
    context.log.info(report.summary())  # counts and the cutoff date only


@dg.job
def retention_job() -> None:
    """Monthly storage-limitation purge of the raw store."""
    purge_expired_raw_data()


# 03:00 UTC on the first day of every month.
retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="0 3 1 * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[landing_files, raw_events, quarantine],
    jobs=[ingest_job, retention_job],
    schedules=[retention_schedule],
    sensors=[landing_folder_sensor],
    resources={"raw_store": RawStoreResource(), "landing": LandingZone()},
)
