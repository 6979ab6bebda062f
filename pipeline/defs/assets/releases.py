"""The release asset: one customer's differentially private release of one month.

Privacy reasons:

* The asset calls :func:`pipeline.releases.lifecycle.run_release`: a stored draw is served
  again on re-execution, retry or backfill, so Dagster can never re-draw noise; only a
  privacy officer's ``--reissue`` (CLI) draws anew.
* One writer per customer: every run of a partition carries the run tag
  ``dagster/partition/customer``, and the instance admits one in-progress run per customer
  (``tag_concurrency_limits`` in ``dagster.yaml``, :mod:`pipeline.instance`); different
  customers' releases run side by side, each in its own process. No pool: a pool is one global
  limit, which would serialise every customer.
* Its three blocking checks (:mod:`pipeline.defs.checks`) re-verify the published store after
  each release, in the same step, and fail the run if any is violated.
* Metadata, logs and run tags hold aggregate facts only (counts of cells, suppressed count, ρ
  spent, the outcome), never a cell value.

A month that cannot be released (no headcount snapshot for it, or no export delivered since it
ended: :class:`~pipeline.releases.lifecycle.NoDataForPeriod`) is **not materialized**: the step
logs why and records an ``AssetObservation`` with ``status = no_data``, so the partition stays
"missing" in the UI instead of turning green; nothing is drawn or spent. A run launched for a
privacy officer's request (tag :data:`REQUEST_TAG`) records its outcome on the run
(:data:`OUTCOME_TAG`); :mod:`pipeline.release_requests` turns the outcomes into the request's status.
"""

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from pipeline.defs.assets.ingest import raw_events
from pipeline.defs.checks import RELEASE_ASSET, RELEASE_CHECK_SPECS, verify_published
from pipeline.defs.partitions import customer_month_partitions
from pipeline.defs.resources import RawStoreResource
from pipeline.release_requests import OUTCOME_TAG, REQUEST_TAG, mark_request

if TYPE_CHECKING:
    from pipeline.releases.lifecycle import ReleaseOutcome


def outcome_metadata(outcome: "ReleaseOutcome") -> dict[str, object]:
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


def _record_outcome(context: dg.AssetExecutionContext, status: str) -> None:
    if context.run.tags.get(REQUEST_TAG):
        context.instance.add_run_tags(context.run_id, {OUTCOME_TAG: json.dumps({status: 1})})


@dg.asset(
    name=RELEASE_ASSET,
    partitions_def=customer_month_partitions,
    deps=[raw_events],
    # no pool: one run per customer at a time is the instance's run tag limit (pipeline.instance)
    check_specs=RELEASE_CHECK_SPECS,
    output_required=False,
    group_name="releases",
    kinds={"duckdb", "opendp"},
    owners=["team:privacy"],
)
def customer_month_release(
    context: dg.AssetExecutionContext, raw_store: RawStoreResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Differentially private monthly release of one customer, drawn once and stored; published to published.duckdb."""
    from pipeline.releases.lifecycle import IncompletePeriod, NoDataForPeriod, run_release
    from privacy.budget import BudgetExceeded

    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    customer, month = key.keys_by_dimension["customer"], key.keys_by_dimension["month"][:7]
    settings = raw_store.settings()
    request = context.run.tags.get(REQUEST_TAG)
    try:
        outcome = run_release(settings, customer, month, requested_by=_requester(context))
    except BudgetExceeded as exc:
        if request:
            mark_request(settings, request, "refused", str(exc))
        raise dg.Failure(
            description=str(exc),
            metadata={"spent_rho": exc.spent, "cap_rho": exc.cap, "needed_rho": exc.needed},
            allow_retries=False,
        ) from None
    except IncompletePeriod as exc:
        if request:
            mark_request(settings, request, "failed", str(exc))
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    except NoDataForPeriod as exc:
        context.log.info(f"not materialized: {exc}")
        context.log_event(
            dg.AssetObservation(
                asset_key=RELEASE_ASSET,
                partition=key,
                metadata={"status": "no_data", "reason": str(exc), "rho_spent": 0.0},
            )
        )
        _record_outcome(context, "no_data")
        yield from verify_published(settings, customer)  # blocking checks still evaluate the published store
        return
    except Exception as exc:
        if request:  # the class name only: an arbitrary library message could quote a value
            mark_request(settings, request, "failed", f"{type(exc).__name__}; see the Dagster run {context.run_id}")
        raise
    metadata = outcome_metadata(outcome)
    context.log.info(f"{customer} {month}: {metadata['status']}, rho spent {metadata['rho_spent']:.4g}")
    _record_outcome(context, outcome.status)
    yield dg.MaterializeResult(metadata=metadata, check_results=verify_published(settings, customer))  # type: ignore[arg-type]


def _requester(context: dg.AssetExecutionContext) -> str:
    """Who asked: the privacy officer of a request (with its id), else the Dagster run."""
    tags = context.run.tags
    if tags.get(REQUEST_TAG):
        return (
            f"{tags.get('wellbeing/requested_by', 'unknown')} (request {tags[REQUEST_TAG]}, dagster:{context.run_id})"
        )
    return f"dagster:{context.run_id}"
