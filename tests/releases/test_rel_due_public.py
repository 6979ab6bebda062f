"""Whether a period is released depends on public facts only, never on whether anyone used the service.

If an empty month were skipped, the existence of a release would itself reveal that at least
one employee had a contact that month: for a small customer, exactly what DP must hide.
"""

from __future__ import annotations

import pytest
from release_helpers import CUSTOMERS, MONTHS, published

from pipeline.releases.lifecycle import NoDataForPeriod, due_periods, run_release
from pipeline.settings import Settings
from pipeline.shards import shard_connection

C = CUSTOMERS[0]
EMPTY = "2025-04"


# months, each quarter after its last month (wellbeing, services and topics are quarterly by default)
DUE = [*MONTHS[:3], "2025-Q1", *MONTHS[3:], "2025-Q2"]


def _delete_month(settings: Settings, month: str) -> None:
    with shard_connection(settings, C) as con:
        con.execute("DELETE FROM events WHERE customer_id = ? AND strftime(occurred_on, '%Y-%m') = ?", [C, month])


def test_a_month_without_any_contact_is_due_and_released_as_noise(rsettings: Settings) -> None:
    before = due_periods(rsettings, C)
    _delete_month(rsettings, EMPTY)
    assert due_periods(rsettings, C) == before == DUE, "the due list must not depend on usage"

    outcome = run_release(rsettings, C, EMPTY, requested_by="t")
    assert outcome.status == "published" and outcome.cost is not None and outcome.cost.rho > 0
    rows = published(
        rsettings,
        "SELECT value, suppressed FROM release_cells WHERE customer_id = ? AND period = ? "
        "AND dimension = 'total' AND metric = 'engaged_employees'",
        [C, EMPTY],
    )
    assert len(rows) == 1
    # Nobody engaged: the noisy total is near zero and therefore hidden, like any small group.
    assert rows[0][1] is True


def test_a_month_before_the_customers_headcount_is_not_releasable(rsettings: Settings) -> None:
    with pytest.raises(NoDataForPeriod, match="headcount"):
        run_release(rsettings, C, "2024-11", requested_by="t")
    assert "2024-11" not in due_periods(rsettings, C)


def test_releasability_does_not_depend_on_the_customers_own_rows(rsettings: Settings) -> None:
    """Even with no event of the customer at all, its periods are due once any export has arrived."""
    before = due_periods(rsettings, C)
    with shard_connection(rsettings, C) as con:
        con.execute("DELETE FROM events WHERE customer_id = ?", [C])
    assert due_periods(rsettings, C) == before == DUE
    assert run_release(rsettings, C, MONTHS[0], requested_by="t").status == "published"
