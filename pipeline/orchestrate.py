"""Run the pipeline's Dagster jobs in-process on the persistent instance (used by ``wellbeing demo``).

The jobs are the same ones ``dagster dev`` shows; running them here records their runs,
materializations and customer partitions in ``$WELLBEING_HOME/dagster`` so the UI shows
the demo's history. Only counts are read back from the runs, never row values.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from pipeline.instance import ensure_dagster_home
from pipeline.settings import Settings


@dataclass(frozen=True)
class IngestRun:
    files: int
    refused: int
    accepted: int
    quarantined: int
    duplicate: int


@dataclass(frozen=True)
class ReleaseRun:
    published: int
    served: int
    refused: int
    no_data: int


# The demo prints its own summary; Dagster's event log stays in the instance (and the UI).
QUIET_LOGGERS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _instance(settings: Settings) -> dg.DagsterInstance:
    ensure_dagster_home(settings)
    return dg.DagsterInstance.get()


def _metadata_values(result: dg.ExecuteInProcessResult, node: str) -> list[dict[str, object]]:
    values = []
    for materialization in result.asset_materializations_for_node(node):
        values.append({k: getattr(v, "value", v) for k, v in materialization.metadata.items()})
    return values


def run_ingest_job(settings: Settings) -> IngestRun:
    """Ingest every file in the landing folder through ``ingest_job`` (registers customer partitions)."""
    from pipeline.definitions import defs

    if not any(settings.landing_dir.iterdir()):
        return IngestRun(0, 0, 0, 0, 0)
    with _instance(settings) as instance:
        result = defs.resolve_job_def("ingest_job").execute_in_process(
            instance=instance, run_config=QUIET_LOGGERS, raise_on_error=False
        )
    if not result.success:
        raise RuntimeError(f"Dagster ingest job failed (run {result.run_id}); see `dagster dev` for its logs")
    meta = _metadata_values(result, "raw_events")[0]
    return IngestRun(
        files=int(meta["files_ingested"]),
        refused=int(meta["files_refused"]),
        accepted=int(meta["rows_accepted"]),
        quarantined=int(meta["rows_quarantined"]),
        duplicate=int(meta["rows_duplicate"]),
    )


def customers_in_store(settings: Settings) -> list[str]:
    """Customers with data in the raw store (employer names, not people)."""
    from pipeline.raw_store import raw_connection
    from pipeline.releases.lifecycle import known_customers

    with raw_connection(settings, read_only=True) as con:
        return known_customers(con)


def run_release_job(settings: Settings, requested_by: str) -> ReleaseRun:
    """File one release request per customer (every due period) and run ``release_request_job`` for each.

    This is the path a privacy officer's request from the dashboard takes, executed now
    instead of waiting for the sensor. Stored releases are served, never re-drawn.
    """
    from stores.control import control_connection
    from pipeline.defs_releases import ReleaseRequestConfig
    from pipeline.definitions import defs
    from stores.control import claim_pending_requests, request_release

    customers = customers_in_store(settings)
    with control_connection(settings) as control:
        for customer in customers:
            request_release(control, customer, None, requested_by)
        claimed = claim_pending_requests(control)
    counts = {"published": 0, "served_stored": 0, "refused": 0, "no_data": 0}
    job = defs.resolve_job_def("release_request_job")
    with _instance(settings) as instance:
        for request in claimed:
            config = ReleaseRequestConfig(
                request_id=request.request_id,
                customer_id=request.customer_id,
                periods=request.periods or [],
                requested_by=request.requested_by,
            )
            result = job.execute_in_process(
                instance=instance,
                run_config=dg.RunConfig(ops={"process_release_request": config}, loggers=QUIET_LOGGERS["loggers"]),
                raise_on_error=False,
            )
            statuses = [e.event_specific_data.materialization.metadata.get("status")  # type: ignore[union-attr]
                        for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
            for status in statuses:
                key = getattr(status, "value", status)
                counts[key] = counts.get(key, 0) + 1
            if not result.success:
                status, message = _request_status(settings, request.request_id)
                if status != "refused":  # anything but a budget refusal is an error, not a count
                    raise RuntimeError(
                        f"release request for {request.customer_id} {status}: {message} (Dagster run {result.run_id})"
                    )
                counts["refused"] += 1
    return ReleaseRun(
        published=counts["published"], served=counts["served_stored"], refused=counts["refused"],
        no_data=counts["no_data"],
    )


def _request_status(settings: Settings, request_id: str) -> tuple[str, str]:
    from stores.control import control_connection
    from stores.control import list_release_requests

    with control_connection(settings, read_only=True) as control:
        rows = list_release_requests(control).filter(request_id=request_id)
    if rows.is_empty():
        return "unknown", "request not found"
    return str(rows["status"][0]), str(rows["message"][0] or "")
