"""Asset checks: their specs and the verification behind them.

The checks are declared on the assets (``check_specs``) and evaluated inside the same step,
so a release run — scheduled, backfilled or requested from the privacy officers' dashboard —
always records them, and a failing blocking check fails the step before anything downstream.

* ``customer_month_release``: three **blocking** checks re-verify the published store after
  each release (thresholds, ledger within cap, no identifier column). They are partitioned like
  the asset (a preview feature of Dagster 1.13), so the UI shows their result per customer-month;
  :mod:`pipeline.releases.checks` does the work and reports aggregate facts only.
* ``raw_events``: ``no_refused_files`` (a delivery refused by the data contract).
"""

import dagster as dg

from pipeline.defs.partitions import customer_month_partitions
from pipeline.settings import Settings

RELEASE_ASSET = "customer_month_release"
RAW_EVENTS_ASSET = "raw_events"

THRESHOLD_CHECK = "published_cells_meet_threshold"
LEDGER_CHECK = "ledger_within_cap"
IDENTIFIER_CHECK = "published_has_no_identifier_column"
RELEASE_CHECKS: tuple[str, ...] = (THRESHOLD_CHECK, LEDGER_CHECK, IDENTIFIER_CHECK)
NO_REFUSED_FILES_CHECK = "no_refused_files"

RELEASE_CHECK_SPECS = [
    dg.AssetCheckSpec(
        THRESHOLD_CHECK,
        asset=RELEASE_ASSET,
        blocking=True,
        partitions_def=customer_month_partitions,
        description=(
            "Every visible count in the customer's published cells is >= k + z·sigma; suppressed cells carry no value."
        ),
    ),
    dg.AssetCheckSpec(
        LEDGER_CHECK,
        asset=RELEASE_ASSET,
        blocking=True,
        partitions_def=customer_month_partitions,
        description="No rolling 12-month window of the customer's budget ledger exceeds its rho cap.",
    ),
    dg.AssetCheckSpec(
        IDENTIFIER_CHECK,
        asset=RELEASE_ASSET,
        blocking=True,
        partitions_def=customer_month_partitions,
        description="The published store has only the documented tables and no identifier-like column.",
    ),
]

RAW_EVENTS_CHECK_SPECS = [
    dg.AssetCheckSpec(
        NO_REFUSED_FILES_CHECK, asset=RAW_EVENTS_ASSET, description="No delivery was refused by the data contract."
    )
]


def verify_published(settings: Settings, customer_id: str) -> list[dg.AssetCheckResult]:
    """Run the three release checks on the published store (short-lived read-only connection)."""
    from pipeline.releases.checks import (
        check_ledger_within_cap,
        check_no_identifiers,
        check_thresholds,
        open_published,
    )
    from stores.control import control_connection, current_policy

    if not settings.published_path.exists():
        return [
            dg.AssetCheckResult(check_name=name, passed=True, metadata={"note": "nothing published yet"})
            for name in RELEASE_CHECKS
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
