"""Run the pipeline's Dagster jobs in-process on the persistent instance (used by ``wellbeing demo``).

The jobs are the same ones ``dagster dev`` shows; running them here records their runs,
materializations and customer partitions in ``$WELLBEING_HOME/dagster`` so the UI shows
the demo's history. Only counts are read back from the runs, never row values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

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


def _metadata_values(result: dg.ExecuteInProcessResult, node: str) -> list[dict[str, Any]]:
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
    from pipeline.shards import customers

    return customers(settings)


def run_release_job(settings: Settings, requested_by: str) -> ReleaseRun:
    """File one release request per customer (every due period) and carry it out as the sensor would.

    This is the path a privacy officer's request from the dashboard takes, executed now instead
    of waiting for ``release_request_sensor``: :func:`pipeline.release_requests.plan_requests`
    turns each request into partitioned runs of the release asset (its blocking checks run and
    show in the UI), executed here in-process one after another, then
    :func:`~pipeline.release_requests.finish_requests` records the requests' status.
    Stored releases are served, never re-drawn.
    """
    from pipeline.definitions import defs
    from pipeline.defs.partitions import MONTHS
    from pipeline.release_requests import REQUEST_TAG, finish_requests, plan_requests, request_outcomes
    from stores.control import control_connection, request_release

    customers = customers_in_store(settings)
    with control_connection(settings) as control:
        for customer in customers:
            request_release(control, customer, None, requested_by)
    counts: Counter[str] = Counter()
    with _instance(settings) as instance:
        plan = plan_requests(instance, settings)
        if plan.new_months:
            instance.add_dynamic_partitions(MONTHS, plan.new_months)
        request_ids = list(dict.fromkeys(str(r.tags[REQUEST_TAG]) for r in plan.run_requests))
        for run_request in plan.run_requests:
            job = defs.resolve_job_def(run_request.job_name or "release_request_job")
            job.execute_in_process(
                instance=instance,
                partition_key=run_request.partition_key,
                tags=run_request.tags,
                run_config={**(run_request.run_config or {}), **QUIET_LOGGERS},
                raise_on_error=False,
            )
        finish_requests(instance, settings)
        for request_id in request_ids:
            runs = list(instance.get_runs(filters=dg.RunsFilter(tags={REQUEST_TAG: request_id})))
            counts.update(request_outcomes(runs))
            if any(run.status != dg.DagsterRunStatus.SUCCESS for run in runs):
                status, message = _request_status(settings, request_id)
                if status != "refused":  # anything but a budget refusal is an error, not a count
                    raise RuntimeError(f"release request {request_id} {status}: {message} (see the Dagster UI)")
                counts["refused"] += 1
    return ReleaseRun(
        published=counts["published"],
        served=counts["served_stored"],
        refused=counts["refused"],
        no_data=counts["no_data"],
    )


def _request_status(settings: Settings, request_id: str) -> tuple[str, str]:
    from stores.control import control_connection, list_release_requests

    with control_connection(settings, read_only=True) as control:
        rows = list_release_requests(control).filter(request_id=request_id)
    if rows.is_empty():
        return "unknown", "request not found"
    return str(rows["status"][0]), str(rows["message"][0] or "")
