"""Release requests from the privacy officers' dashboard, carried out as runs of the release asset.

The dashboard writes a request to the control store (customer, periods or "every due period",
who). :func:`plan_requests` (run by ``release_request_sensor``, or in-process by the demo)
claims the pending requests and turns each into **runs of the release asset**, one per
customer-month partition, tagged with the request, so the asset's blocking checks run and show
in the UI for every partition like any other materialization. Quarterly periods (tables the
policy releases per quarter) are not asset partitions: they run in ``quarterly_release_job``.
:func:`finish_requests` (``release_request_status_sensor``) sets a request ``done`` once all its
runs have finished; a budget refusal or a failure is recorded by the run itself, at once.

"Every due period" means every registered month of the customer that Dagster has not
materialized yet (re-running a stored release serves it and spends nothing), plus the due
quarters when the customer's policy has quarterly tables.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import dagster as dg

from pipeline.settings import Settings
from stores.control import ReleaseRequest, claim_pending_requests, control_connection, update_request_status

REQUEST_TAG = "wellbeing/release_request"
REQUESTED_BY_TAG = "wellbeing/requested_by"
REQUEST_RUNS_TAG = "wellbeing/request_runs"  # how many runs the request was split into
OUTCOME_TAG = "wellbeing/release_outcomes"  # JSON {status: count}, set by each run of a request

RELEASE_ASSET = "customer_month_release"
REQUEST_JOB = "release_request_job"
QUARTERLY_JOB = "quarterly_release_job"
QUARTERLY_OP = "release_quarters"

_FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass
class RequestPlan:
    """What one sensor tick launches: run requests and the month partitions they need."""

    run_requests: list[dg.RunRequest] = field(default_factory=list)
    new_months: list[str] = field(default_factory=list)  # partition keys to add to "months"
    finished: list[str] = field(default_factory=list)  # request ids settled without a run


def mark_request(settings: Settings, request_id: str, status: str, message: str) -> None:
    """Set a request's status in the control store (aggregate-only message)."""
    with control_connection(settings) as control:
        update_request_status(control, request_id, status, message)


def _months_and_quarters(periods: list[str]) -> tuple[list[str], list[str]]:
    from privacy.periods import parse_period

    months = [p for p in periods if parse_period(p).granularity == "month"]
    return months, [p for p in periods if p not in months]


def _due_quarters(settings: Settings, customer_id: str) -> list[str]:
    """Due quarters of the customer, only when its policy releases some table per quarter."""
    from pipeline.releases.lifecycle import due_periods
    from stores.control import current_policy

    with control_connection(settings, read_only=True) as control:
        policy, _ = current_policy(control, customer_id)
    from pipeline.shards import store_exists

    if not policy.tables_for("quarter") or not store_exists(settings):
        return []
    return [p for p in due_periods(settings, customer_id) if "Q" in p]


def _expand(instance: dg.DagsterInstance, settings: Settings, request: ReleaseRequest) -> tuple[list[str], list[str]]:
    """(months, quarters) of a request; ``None`` periods = every not-yet-materialized registered month + due quarters."""
    from pipeline.defs.partitions import MONTHS, customer_month_key

    if request.periods is not None:
        return _months_and_quarters(request.periods)
    materialized = instance.get_materialized_partitions(dg.AssetKey(RELEASE_ASSET))
    months = [
        key[:7]
        for key in instance.get_dynamic_partitions(MONTHS)
        if str(customer_month_key(request.customer_id, key[:7])) not in materialized
    ]
    return sorted(months), _due_quarters(settings, request.customer_id)


def plan_requests(instance: dg.DagsterInstance, settings: Settings) -> RequestPlan:
    """Claim every pending request and turn it into runs (see the module docstring)."""
    from pipeline.defs.partitions import CUSTOMERS, MONTHS, customer_month_key, month_key
    from pipeline.releases.lifecycle import last_complete_month

    plan = RequestPlan()
    with control_connection(settings, timeout=5) as control:
        claimed = claim_pending_requests(control)
    if not claimed:
        return plan
    registered_months = set(instance.get_dynamic_partitions(MONTHS))
    registered_customers = set(instance.get_dynamic_partitions(CUSTOMERS))
    last = last_complete_month()
    for request in claimed:
        try:
            months, quarters = _expand(instance, settings, request)
        except Exception as exc:  # the class name only (invariant: no value in messages)
            mark_request(settings, request.request_id, "failed", f"{type(exc).__name__} while planning the request")
            plan.finished.append(request.request_id)
            continue
        early = [m for m in months if m > last]
        if early:
            mark_request(
                settings,
                request.request_id,
                "failed",
                f"period(s) {', '.join(early)} not complete yet; the latest complete month is {last}",
            )
            plan.finished.append(request.request_id)
            continue
        if months and request.customer_id not in registered_customers:
            mark_request(
                settings,
                request.request_id,
                "failed",
                f"customer {request.customer_id} is not registered in Dagster yet (release_customers_sensor); request again",
            )
            plan.finished.append(request.request_id)
            continue
        n_runs = len(months) + (1 if quarters else 0)
        if not n_runs:
            mark_request(settings, request.request_id, "done", "nothing due")
            plan.finished.append(request.request_id)
            continue
        tags = {
            REQUEST_TAG: request.request_id,
            REQUESTED_BY_TAG: request.requested_by,
            REQUEST_RUNS_TAG: str(n_runs),
        }
        for month in months:
            if month_key(month) not in registered_months:
                registered_months.add(month_key(month))
                plan.new_months.append(month_key(month))
            key = customer_month_key(request.customer_id, month)
            plan.run_requests.append(
                dg.RunRequest(
                    run_key=f"request:{request.request_id}:{key}",
                    job_name=REQUEST_JOB,
                    partition_key=str(key),
                    tags=tags,
                )
            )
        if quarters:
            plan.run_requests.append(
                dg.RunRequest(
                    run_key=f"request:{request.request_id}:quarters",
                    job_name=QUARTERLY_JOB,
                    run_config={
                        "ops": {QUARTERLY_OP: {"config": {"customer_id": request.customer_id, "periods": quarters}}}
                    },
                    tags=tags,
                )
            )
    return plan


def request_outcomes(runs: list[dg.DagsterRun]) -> Counter[str]:
    """The release outcomes the runs of one request recorded (``published``, ``served_stored`` ...)."""
    counts: Counter[str] = Counter()
    for run in runs:
        counts.update(json.loads(run.tags.get(OUTCOME_TAG, "{}")))
    return counts


def summary(counts: Counter[str]) -> str:
    """``'2 published, 1 served_stored'`` (published first), or ``'nothing due'``."""
    order = ["published", "served_stored", *sorted(set(counts) - {"published", "served_stored"})]
    return ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s)) or "nothing due"


def finish_requests(instance: dg.DagsterInstance, settings: Settings) -> list[str]:
    """Set every running request whose runs have all finished to ``done`` (or ``failed``); returns their ids."""
    from stores.control import list_release_requests

    if not settings.control_path.exists():
        return []
    with control_connection(settings, read_only=True, timeout=5) as control:
        running = list_release_requests(control).filter(status="running")["request_id"].to_list()
    finished = []
    for request_id in running:
        runs = list(instance.get_runs(filters=dg.RunsFilter(tags={REQUEST_TAG: request_id})))
        if not runs or any(r.status not in _FINISHED for r in runs):
            continue
        expected = int(runs[0].tags.get(REQUEST_RUNS_TAG, len(runs)))
        if len(runs) < expected:
            continue
        failed = [r for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
        if failed:
            mark_request(
                settings,
                request_id,
                "failed",
                f"{len(failed)} of {len(runs)} run(s) failed; see Dagster run {failed[0].run_id}",
            )
        else:
            mark_request(settings, request_id, "done", summary(request_outcomes(runs)))
        finished.append(request_id)
    return finished
