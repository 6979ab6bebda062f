"""Dagster definitions of the release domain: the customer × month release asset and its checks,
the monthly schedule, the release-request sensor and job, and the customer registry sensor.

Privacy reasons:

* The release asset calls :func:`pipeline.releases.lifecycle.run_release`: a stored draw is
  served again on re-execution, retry or backfill, so Dagster can never re-draw noise; only a
  privacy officer's ``--reissue`` (CLI) draws anew.
* Every step that writes a DuckDB store runs in the ``duckdb_writer`` pool (limit 1 in
  ``$DAGSTER_HOME/dagster.yaml``): one writing process at a time.
* Blocking asset checks re-verify the published store after each release (thresholds, ledger
  cap, no identifier column) and fail the run if any is violated.
* Materialization metadata holds aggregate facts only (counts of cells, suppressed count, ρ
  spent), never a cell value.
"""


from datetime import date, datetime

import dagster as dg

from pipeline.partitions import customer_month_partitions, customers_partitions
from pipeline.resources import RawStoreResource

RELEASE_ASSET = "customer_month_release"
REQUEST_TAG = "wellbeing/release_request"

THRESHOLD_CHECK = "published_cells_meet_threshold"
LEDGER_CHECK = "ledger_within_cap"
IDENTIFIER_CHECK = "published_has_no_identifier_column"

RELEASE_CHECK_SPECS = [
    dg.AssetCheckSpec(
        THRESHOLD_CHECK, asset=RELEASE_ASSET, blocking=True,
        description="Every visible count in the customer's published cells is >= k + z·sigma; suppressed cells carry no value.",
    ),
    dg.AssetCheckSpec(
        LEDGER_CHECK, asset=RELEASE_ASSET, blocking=True,
        description="No rolling 12-month window of the customer's budget ledger exceeds its rho cap.",
    ),
    dg.AssetCheckSpec(
        IDENTIFIER_CHECK, asset=RELEASE_ASSET, blocking=True,
        description="The published store has only the documented tables and no identifier-like column.",
    ),
]


# -- verification shared by the asset and the request job -------------------------------------------
def verify_published(settings, customer_id: str) -> list[dg.AssetCheckResult]:  # noqa: ANN001
    """Run the three checks on the published store (short-lived read-only connection)."""
    from stores.control import current_policy
    from stores.control import control_connection
    from pipeline.releases.checks import (
        check_ledger_within_cap,
        check_no_identifiers,
        check_thresholds,
        open_published,
    )

    if not settings.published_path.exists():
        return [
            dg.AssetCheckResult(check_name=name, passed=True, metadata={"note": "nothing published yet"})
            for name in (THRESHOLD_CHECK, LEDGER_CHECK, IDENTIFIER_CHECK)
        ]
    con = open_published(settings.published_path)
    try:
        customers = [r[0] for r in con.execute("SELECT DISTINCT customer_id FROM budget_ledger").fetchall()]
        with control_connection(settings, read_only=True) as control:
            policies = {c: current_policy(control, c)[0] for c in {*customers, customer_id}}
        findings = {
            THRESHOLD_CHECK: check_thresholds(con, customer_id),
            LEDGER_CHECK: check_ledger_within_cap(con, policies, customer_id),
            IDENTIFIER_CHECK: check_no_identifiers(con),
        }
    finally:
        con.close()
    return [
        dg.AssetCheckResult(
            check_name=name,
            passed=f.passed,
            metadata={"finding": f.description, "offending": f.offending, "examples": ", ".join(f.examples)},
        )
        for name, f in findings.items()
    ]


def _outcome_metadata(outcome) -> dict[str, object]:  # noqa: ANN001
    """Aggregate facts only: counts and budget, never a cell value."""
    return {
        "status": outcome.status,
        "release_version": outcome.version or 0,
        "rho_spent": outcome.cost.rho if outcome.cost else 0.0,
        "cells": outcome.cells,
        "suppressed_cells": outcome.suppressed,
        "visible_cells": outcome.cells - outcome.suppressed,
        "policy_version": outcome.policy_version if outcome.policy_version is not None else -1,
    }


# -- the release asset --------------------------------------------------------------------------------
@dg.asset(
    name=RELEASE_ASSET,
    partitions_def=customer_month_partitions,
    pool="duckdb_writer",
    check_specs=RELEASE_CHECK_SPECS,
    group_name="releases",
    kinds={"duckdb", "opendp"},
    owners=["team:privacy"],
)
def customer_month_release(context: dg.AssetExecutionContext, raw_store: RawStoreResource):  # noqa: ANN201
    """Differentially private monthly release of one customer, drawn once and stored; published to published.duckdb."""
    from privacy.budget import BudgetExceeded
    from pipeline.releases.lifecycle import IncompletePeriod, NoDataForPeriod, run_release

    keys = context.partition_key.keys_by_dimension  # type: ignore[union-attr]
    customer, month = keys["customer"], keys["month"][:7]
    settings = raw_store.settings()
    try:
        outcome = run_release(settings, customer, month, requested_by=f"dagster:{context.run_id}")
        metadata = _outcome_metadata(outcome)
    except BudgetExceeded as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={"spent_rho": exc.spent, "cap_rho": exc.cap, "needed_rho": exc.needed},
            allow_retries=False,
        ) from None
    except IncompletePeriod as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except NoDataForPeriod as exc:
        context.log.info(str(exc))
        metadata = {"status": "no_data", "rho_spent": 0.0, "cells": 0, "suppressed_cells": 0, "visible_cells": 0}
    context.log.info(f"{customer} {month}: {metadata['status']}, rho spent {metadata['rho_spent']:.4g}")
    return dg.MaterializeResult(metadata=metadata, check_results=verify_published(settings, customer))


monthly_release_job = dg.define_asset_job(
    "monthly_release_job",
    selection=dg.AssetSelection.assets(RELEASE_ASSET),
    description="Release one customer-month (re-runs serve the stored release).",
)


def _last_complete_month(when: datetime | date) -> str:
    from pipeline.releases.lifecycle import last_complete_month

    return last_complete_month(when if isinstance(when, date) and not isinstance(when, datetime) else when.date())


# 06:00 UTC on the 2nd of every month: release the month that has just ended, for every customer.
@dg.schedule(job=monthly_release_job, cron_schedule="0 6 2 * *", execution_timezone="UTC")
def monthly_release_schedule(context: dg.ScheduleEvaluationContext):  # noqa: ANN201
    """Request the last complete month's release for every registered customer."""
    month = _last_complete_month(context.scheduled_execution_time)
    customers = context.instance.get_dynamic_partitions(customers_partitions.name)
    if not customers:
        return dg.SkipReason("no customers registered yet")
    return [
        dg.RunRequest(
            run_key=f"release:{customer}:{month}",
            partition_key=dg.MultiPartitionKey({"customer": customer, "month": f"{month}-01"}),
        )
        for customer in sorted(customers)
    ]


# -- release requests from the privacy officers' dashboard --------------------------------------------
class ReleaseRequestConfig(dg.Config):
    request_id: str
    customer_id: str
    periods: list[str] = []  # empty: every due period
    requested_by: str


@dg.op(pool="duckdb_writer", tags={"kind": "release"})
def process_release_request(
    context: dg.OpExecutionContext, config: ReleaseRequestConfig, raw_store: RawStoreResource
) -> None:
    """Release the requested periods (stored ones are served, nothing re-drawn) and record the request status."""
    from privacy.budget import BudgetExceeded
    from privacy.periods import parse_period
    from stores.control import update_request_status
    from stores.control import control_connection
    from pipeline.releases.lifecycle import due_periods, run_release

    settings = raw_store.settings()
    who = f"{config.requested_by} (request {config.request_id}, dagster:{context.run_id})"

    def set_status(status: str, message: str) -> None:
        with control_connection(settings) as control:
            update_request_status(control, config.request_id, status, message)

    try:
        periods = list(config.periods) or due_periods(settings, config.customer_id)
        counts = {"published": 0, "served_stored": 0}
        registered = set(context.instance.get_dynamic_partitions(customers_partitions.name))
        for period in periods:
            outcome = run_release(settings, config.customer_id, period, requested_by=who)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            if parse_period(period).granularity == "month" and config.customer_id in registered:
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=RELEASE_ASSET,
                        partition=str(dg.MultiPartitionKey({"customer": config.customer_id, "month": f"{period}-01"})),
                        metadata=_outcome_metadata(outcome),
                    )
                )
        failed = [r for r in verify_published(settings, config.customer_id) if not r.passed]
        if failed:
            raise dg.Failure(description=f"published store failed checks: {[r.check_name for r in failed]}")
    except BudgetExceeded as exc:
        set_status("refused", str(exc))
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except Exception as exc:
        # The class name only: an arbitrary library message could quote a value (invariant 1).
        set_status("failed", f"{type(exc).__name__}; see the Dagster run {context.run_id} for details")
        raise
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing due"
    set_status("done", summary)


@dg.job(description="Process one privacy officer's release request (launched by release_request_sensor).")
def release_request_job() -> None:
    process_release_request()


@dg.sensor(job=release_request_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def release_request_sensor(context: dg.SensorEvaluationContext, raw_store: RawStoreResource):  # noqa: ANN201
    """Claim pending release requests from the control store and launch one run per request."""
    from stores.connect import StoreBusy
    from stores.control import claim_pending_requests, control_connection

    settings = raw_store.settings()
    if not settings.control_path.exists():
        return dg.SkipReason("no control store yet")
    try:
        with control_connection(settings, timeout=5) as control:
            claimed = claim_pending_requests(control)
    except StoreBusy as exc:
        return dg.SkipReason(str(exc))
    if not claimed:
        return dg.SkipReason("no pending release requests")
    return [
        dg.RunRequest(
            run_key=f"request:{req.request_id}",
            run_config=dg.RunConfig(
                ops={
                    "process_release_request": ReleaseRequestConfig(
                        request_id=req.request_id,
                        customer_id=req.customer_id,
                        periods=req.periods or [],
                        requested_by=req.requested_by,
                    )
                }
            ),
            tags={REQUEST_TAG: req.request_id},
        )
        for req in claimed
    ]


# -- customers as dynamic partitions ------------------------------------------------------------------
@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def release_customers_sensor(context: dg.SensorEvaluationContext, raw_store: RawStoreResource):  # noqa: ANN201
    """Register every customer with data in the raw store as a ``customers`` partition.

    DuckDB: even this read-only look blocks a writer, so it is skipped while any run is in progress.
    """
    from pipeline.raw_store import RawStoreError, raw_connection
    from pipeline.releases.lifecycle import known_customers

    settings = raw_store.settings()
    if not settings.raw_path.exists():
        return dg.SkipReason("no raw store yet")
    busy = context.instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]), limit=1
    )
    if busy:
        return dg.SkipReason("a run is in progress; the raw store is left to its writer")
    try:
        with raw_connection(settings, read_only=True) as con:
            customers = known_customers(con)
    except RawStoreError as exc:
        return dg.SkipReason(f"raw store busy: {exc}")
    new = sorted(set(customers) - set(context.instance.get_dynamic_partitions(customers_partitions.name)))
    if not new:
        return dg.SkipReason("no new customers")
    return dg.SensorResult(dynamic_partitions_requests=[customers_partitions.build_add_request(new)])


def build_defs(resources: dict[str, object] | None = None) -> dg.Definitions:
    """The release definitions with ``resources`` (default: the raw store under ``$WELLBEING_HOME``, read at run time).

    The module-level :data:`defs` carries no resources: ``pipeline/definitions.py`` merges it
    with the ingest definitions, which provide ``raw_store`` once (Dagster refuses two
    different resource objects under one key).
    """
    return dg.Definitions(
        assets=[customer_month_release],
        jobs=[monthly_release_job, release_request_job],
        schedules=[monthly_release_schedule],
        sensors=[release_request_sensor, release_customers_sensor],
        resources=resources if resources is not None else {"raw_store": RawStoreResource()},
    )


defs = build_defs(resources={})
