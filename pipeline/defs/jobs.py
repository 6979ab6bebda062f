"""Jobs: ingest, the release of customer-month partitions (schedule and requests), quarterly
releases of a request, and the monthly retention purge.

Concurrency (:mod:`pipeline.instance`, ``dagster.yaml``): a run of the release jobs holds one
customer-month partition and carries the run tag ``dagster/partition/customer``; the instance
admits one in-progress run per customer, so different customers' releases run side by side
(one process each) and one customer's never overlap. The published-store rebuild runs in the
``published_store`` pool; ingest, the quarterly op and the retention purge write the raw store
in the ``duckdb_writer`` pool (limit 1 each).
"""

import json

import dagster as dg

from pipeline.defs.assets.ingest import WRITER_POOL, landing_files, quarantine, raw_events
from pipeline.defs.assets.published import published_store
from pipeline.defs.assets.releases import customer_month_release
from pipeline.defs.partitions import customer_month_partitions
from pipeline.defs.resources import RawStoreResource
from pipeline.release_requests import OUTCOME_TAG, QUARTERLY_JOB, QUARTERLY_OP, REQUEST_JOB, REQUEST_TAG, mark_request
from pipeline.retention import purge_older_than

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(landing_files, raw_events, quarantine),
    description="Ingest landing files (launched by landing_folder_sensor, one run per file).",
)

_RELEASE_SELECTION = dg.AssetSelection.assets(customer_month_release, published_store)

monthly_release_job = dg.define_asset_job(
    "monthly_release_job",
    selection=_RELEASE_SELECTION,
    partitions_def=customer_month_partitions,
    description="Release one customer-month and rebuild the published store (re-runs serve the stored release).",
)

release_request_job = dg.define_asset_job(
    REQUEST_JOB,
    selection=_RELEASE_SELECTION,
    partitions_def=customer_month_partitions,
    description="One customer-month of a privacy officer's release request (launched by release_request_sensor).",
)


class QuarterlyReleaseConfig(dg.Config):
    customer_id: str
    periods: list[str]  # 'YYYY-Qn'


@dg.op(name=QUARTERLY_OP, pool=WRITER_POOL, tags={"kind": "release"})
def release_quarters(
    context: dg.OpExecutionContext, config: QuarterlyReleaseConfig, raw_store: RawStoreResource
) -> None:
    """Release the requested quarters (tables the policy releases per quarter); stored ones are served.

    Quarters are not partitions of the monthly release asset; this op is the request path for
    them (``run_release``: drawn once, budget checked, ledger row in the same transaction).
    """
    from pipeline.defs.checks import verify_published
    from pipeline.releases.lifecycle import run_release
    from privacy.budget import BudgetExceeded

    settings = raw_store.settings()
    request = context.run.tags.get(REQUEST_TAG, "")
    who = f"{context.run.tags.get('wellbeing/requested_by', 'unknown')} (request {request}, dagster:{context.run_id})"
    counts: dict[str, int] = {}
    try:
        for period in config.periods:
            outcome = run_release(settings, config.customer_id, period, requested_by=who)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        failed = [r.check_name for r in verify_published(settings, config.customer_id) if not r.passed]
        if failed:
            raise dg.Failure(description=f"published store failed checks: {failed}")
    except BudgetExceeded as exc:
        if request:
            mark_request(settings, request, "refused", str(exc))
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except Exception as exc:
        if request:  # the class name only: a library message could quote a value
            mark_request(settings, request, "failed", f"{type(exc).__name__}; see the Dagster run {context.run_id}")
        raise
    context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: json.dumps(counts)})


@dg.job(name=QUARTERLY_JOB, description="The quarterly periods of a privacy officer's release request.")
def quarterly_release_job() -> None:
    release_quarters()


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
