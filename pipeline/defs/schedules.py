"""Schedules: the monthly release of every customer, and the monthly retention purge.

Both are RUNNING by default (``dagster dev`` / ``dg dev`` with the daemon): releasing each
month as it ends is the product, and the purge is the storage-limitation promise. A release
is drawn once and spends the customer's budget within its cap (a run over the cap is refused,
nothing spent); a privacy officer pauses releases by stopping ``monthly_release_schedule``.
"""

from datetime import date, datetime

import dagster as dg

from pipeline.defs.jobs import monthly_release_job, retention_job
from pipeline.defs.partitions import CUSTOMERS, MONTHS, customer_month_key, month_key


def _last_complete_month(when: datetime | date) -> str:
    from pipeline.releases.lifecycle import last_complete_month

    return last_complete_month(when.date() if isinstance(when, datetime) else when)


# 06:00 UTC on the 2nd of every month: release the month that has just ended, for every customer.
@dg.schedule(
    job=monthly_release_job,
    cron_schedule="0 6 2 * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def monthly_release_schedule(context: dg.ScheduleEvaluationContext) -> dg.SkipReason | list[dg.RunRequest]:
    """Request the last complete month's release for every registered customer."""
    month = _last_complete_month(context.scheduled_execution_time)
    customers = context.instance.get_dynamic_partitions(CUSTOMERS)
    if not customers:
        return dg.SkipReason("no customers registered yet")
    if month_key(month) not in context.instance.get_dynamic_partitions(MONTHS):
        return dg.SkipReason(
            f"{month} is not a release partition yet: no headcount or no export delivered since it ended "
            "(the ingest registers it; request the release from the dashboard afterwards)"
        )
    return [
        dg.RunRequest(run_key=f"release:{customer}:{month}", partition_key=str(customer_month_key(customer, month)))
        for customer in sorted(customers)
    ]


# 03:00 UTC on the first day of every month.
retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="0 3 1 * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
