"""Sensors: the landing folder, release requests (launch and status), customer and month registry.

All are RUNNING by default. Sensors that read the raw store skip while any run is in progress
(DuckDB: even a read-only look blocks the writer).
"""

import json
import time

import dagster as dg

from pipeline.defs.assets.ingest import LandingSelection
from pipeline.defs.jobs import ingest_job, quarterly_release_job, release_request_job
from pipeline.defs.partitions import CUSTOMERS, MONTHS, customers_partitions, month_key, months_partitions
from pipeline.defs.resources import LandingZone, RawStoreResource
from pipeline.release_requests import finish_requests, plan_requests
from stores.connect import StoreBusy


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


@dg.sensor(
    jobs=[release_request_job, quarterly_release_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def release_request_sensor(
    context: dg.SensorEvaluationContext, raw_store: RawStoreResource
) -> dg.SensorResult | dg.SkipReason:
    """Claim pending release requests and launch one run of the release asset per requested month.

    The runs are partitioned runs of ``customer_month_release`` (tagged with the request), so
    its blocking checks run and show for each partition; see :mod:`pipeline.release_requests`.
    """
    settings = raw_store.settings()
    if not settings.control_path.exists():
        return dg.SkipReason("no control store yet")
    try:
        plan = plan_requests(context.instance, settings)
    except StoreBusy as exc:
        return dg.SkipReason(str(exc))
    if not plan.run_requests and not plan.finished:
        return dg.SkipReason("no pending release requests")
    return dg.SensorResult(
        run_requests=plan.run_requests,
        dynamic_partitions_requests=[months_partitions.build_add_request(plan.new_months)] if plan.new_months else [],
    )


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def release_request_status_sensor(context: dg.SensorEvaluationContext, raw_store: RawStoreResource) -> dg.SkipReason:
    """Mark a release request ``done`` once every run it launched has finished (the runs record outcomes)."""
    try:
        finished = finish_requests(context.instance, raw_store.settings())
    except StoreBusy as exc:
        return dg.SkipReason(str(exc))
    return dg.SkipReason(f"{len(finished)} request(s) finished" if finished else "no request finished")


def _raw_store_idle(context: dg.SensorEvaluationContext) -> bool:
    busy = context.instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]), limit=1
    )
    return not busy


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def release_customers_sensor(
    context: dg.SensorEvaluationContext, raw_store: RawStoreResource
) -> dg.SensorResult | dg.SkipReason:
    """Keep the ``customers`` partitions equal to the shard catalog: add new customers, and delete
    the partitions of customers removed with ``wellbeing customer remove`` (their shard and key
    are gone, so a run could only fail; the removal itself is recorded in the catalog).

    DuckDB: even this read-only look blocks a writer, so it is skipped while any run is in progress.
    """
    from pipeline.raw_store import RawStoreError
    from pipeline.shards import live_and_removed_customers, store_exists

    settings = raw_store.settings()
    if not store_exists(settings):
        return dg.SkipReason("no raw store yet")
    if not _raw_store_idle(context):
        return dg.SkipReason("a run is in progress; the raw store is left to its writer")
    try:
        customers, removed = live_and_removed_customers(settings)  # the shard catalog only (one short read)
    except RawStoreError as exc:
        return dg.SkipReason(f"raw store busy: {exc}")
    known = set(context.instance.get_dynamic_partitions(CUSTOMERS))
    new = sorted(set(customers) - known)
    gone = sorted(set(removed) & known)
    if not new and not gone:
        return dg.SkipReason("no new or removed customers")
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if new:
        requests.append(customers_partitions.build_add_request(new))
    if gone:
        requests.append(customers_partitions.build_delete_request(gone))
    return dg.SensorResult(dynamic_partitions_requests=requests)


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def release_months_sensor(
    context: dg.SensorEvaluationContext, raw_store: RawStoreResource
) -> dg.SensorResult | dg.SkipReason:
    """Register the months the raw store can release (public facts only) as ``months`` partitions.

    The ingest asset does this after each delivery; this sensor covers stores filled by
    ``wellbeing ingest`` and months that have ended since. Skipped while any run is in progress.
    """
    from pipeline.raw_store import RawStoreError
    from pipeline.releases.lifecycle import catalog_releasable_months
    from pipeline.shards import store_exists

    settings = raw_store.settings()
    if not store_exists(settings):
        return dg.SkipReason("no raw store yet")
    if not _raw_store_idle(context):
        return dg.SkipReason("a run is in progress; the raw store is left to its writer")
    try:
        months = [month_key(m) for m in catalog_releasable_months(settings)]  # the shard catalog only
    except RawStoreError as exc:
        return dg.SkipReason(f"raw store busy: {exc}")
    known = set(context.instance.get_dynamic_partitions(MONTHS))
    new = [m for m in months if m not in known]
    if not new:
        return dg.SkipReason("no new months")
    return dg.SensorResult(dynamic_partitions_requests=[months_partitions.build_add_request(new)])
