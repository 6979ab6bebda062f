"""Release life cycle: drawn once, served from store, reissue recorded, budget enforced, late events."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from release_helpers import CUSTOMERS, published, raw_ledger, squeeze_budget

from pipeline.raw_store import raw_connection
from pipeline.releases.lifecycle import (
    IncompletePeriod,
    NoDataForPeriod,
    due_periods,
    last_complete_month,
    run_all_due,
    run_release,
)
from pipeline.settings import Settings
from privacy.budget import BudgetExceeded, release_cost
from privacy.policy import DEFAULT_POLICY
from stores.control import control_connection, set_policy_value

C = CUSTOMERS[0]

CELLS = (
    "SELECT dimension, group_value, metric, value, ci_low, ci_high, suppressed, reason FROM release_cells "
    "WHERE customer_id = ? AND period = ? ORDER BY dimension, group_value, metric"
)


def test_rerun_serves_the_stored_release_and_spends_nothing(rsettings: Settings) -> None:
    first = run_release(rsettings, C, "2025-03", requested_by="alice")
    assert first.status == "published" and first.cost is not None and first.cost.rho > 0
    cells_1 = published(rsettings, CELLS, [C, "2025-03"])
    visible = [c for c in cells_1 if not c[6]]
    assert visible, "the fixture should give at least one visible cell"

    again = run_release(rsettings, C, "2025-03", requested_by="bob")
    assert again.status == "served_stored" and again.cost is None
    assert again.release_id == first.release_id
    assert published(rsettings, CELLS, [C, "2025-03"]) == cells_1  # identical values, not re-noised
    ledger = raw_ledger(rsettings)
    assert [(r[0], r[1], r[2]) for r in ledger] == [(C, "2025-03", "release")]
    assert ledger[0][5] == "alice"


def test_reissue_draws_anew_spends_again_and_supersedes(rsettings: Settings) -> None:
    first = run_release(rsettings, C, "2025-02", requested_by="alice")
    before = published(rsettings, CELLS, [C, "2025-02"])
    second = run_release(rsettings, C, "2025-02", requested_by="privacy-officer", reissue=True)
    assert second.status == "reissued" and second.version == 2 and second.release_id != first.release_id
    ledger = raw_ledger(rsettings)
    assert [(r[2], r[4]) for r in ledger] == [("release", first.release_id), ("reissue", second.release_id)]
    assert ledger[1][3] == pytest.approx(first.cost.rho)  # type: ignore[union-attr]
    # only the current version is published; the ledger keeps both draws
    assert published(rsettings, "SELECT release_id, version FROM releases WHERE period = '2025-02'") == [
        (second.release_id, 2)
    ]
    assert published(rsettings, "SELECT count(*) FROM budget_ledger")[0][0] == 2
    after = published(rsettings, CELLS, [C, "2025-02"])
    assert [v[3] for v in after if not v[6]] != [v[3] for v in before if not v[6]]  # new noise


def test_over_budget_release_is_refused_nothing_published_nothing_spent(rsettings: Settings) -> None:
    run_release(rsettings, C, "2025-01", requested_by="t")
    run_release(rsettings, C, "2025-02", requested_by="t")
    spent = 2 * release_cost(DEFAULT_POLICY, "2025-01").rho
    cap = squeeze_budget(rsettings, C, spent=spent)  # the officer lowers the annual ε: the cap is now what is spent
    published_before = rsettings.published_path.read_bytes()
    ledger_before = raw_ledger(rsettings)
    with pytest.raises(BudgetExceeded) as info:
        run_release(rsettings, C, "2025-03", requested_by="t")
    assert info.value.spent == pytest.approx(spent) and info.value.cap == pytest.approx(cap)
    assert info.value.needed == pytest.approx(cap * 0.5 / 12)  # a monthly release at the lowered dial
    assert raw_ledger(rsettings) == ledger_before
    assert rsettings.published_path.read_bytes() == published_before
    with raw_connection(rsettings, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM release_draws WHERE period = '2025-03'").fetchone()[0] == 0
    # the other customer has its own budget
    assert run_release(rsettings, CUSTOMERS[1], "2025-03", requested_by="t").status == "published"


def test_backfilled_earlier_period_respects_every_window(rsettings: Settings) -> None:
    run_release(rsettings, C, "2025-06", requested_by="t")
    run_release(rsettings, C, "2025-01", requested_by="t")
    squeeze_budget(rsettings, C, spent=2 * release_cost(DEFAULT_POLICY, "2025-01").rho)
    with pytest.raises(BudgetExceeded):  # 2025-03 lies in the windows of both: every one of them is full
        run_release(rsettings, C, "2025-03", requested_by="t")


def test_incomplete_and_empty_periods_are_refused_without_spending(rsettings: Settings) -> None:
    this_month = datetime.now(UTC).strftime("%Y-%m")
    with pytest.raises(IncompletePeriod, match="not complete"):
        run_release(rsettings, C, this_month, requested_by="t")
    with pytest.raises(IncompletePeriod, match="YYYY-MM"):
        run_release(rsettings, C, "2025-13", requested_by="t")
    with pytest.raises(NoDataForPeriod):
        run_release(rsettings, C, "2024-06", requested_by="t")
    with pytest.raises(IncompletePeriod):  # a month is complete only once it has ended
        run_release(rsettings, C, "2025-06", requested_by="t", today=date(2025, 6, 30))
    assert last_complete_month(date(2025, 1, 15)) == "2024-12"
    assert (
        not rsettings.published_path.exists() or published(rsettings, "SELECT count(*) FROM budget_ledger")[0][0] == 0
    )


def test_due_periods_and_run_all_due(rsettings: Settings) -> None:
    # engagement monthly, wellbeing / services / topics quarterly (the defaults): a quarter follows its months
    assert due_periods(rsettings, C, today=date(2025, 4, 10)) == ["2025-01", "2025-02", "2025-03", "2025-Q1"]
    run_release(rsettings, C, "2025-02", requested_by="t")
    assert due_periods(rsettings, C) == ["2025-01", "2025-03", "2025-Q1", "2025-04", "2025-05", "2025-06", "2025-Q2"]
    outcomes = run_all_due(rsettings, "scheduler", today=date(2025, 4, 10))
    assert {(o.customer_id, o.period) for o in outcomes} == {
        (c, m) for c in CUSTOMERS for m in ("2025-01", "2025-02", "2025-03", "2025-Q1") if (c, m) != (C, "2025-02")
    }
    assert all(o.status == "published" for o in outcomes)
    assert published(rsettings, "SELECT count(*) FROM releases")[0][0] == 8
    assert due_periods(rsettings, C, today=date(2025, 4, 10)) == []


def test_quarterly_tables_are_released_as_quarters(rsettings: Settings) -> None:
    due = due_periods(rsettings, C)
    assert "2025-Q1" in due and "2025-Q2" in due and "2025-01" in due
    out = run_release(rsettings, C, "2025-Q1", requested_by="t")
    assert out.status == "published"
    metrics = {r[0] for r in published(rsettings, "SELECT DISTINCT metric FROM release_cells WHERE period = '2025-Q1'")}
    assert metrics == {
        "who5_mean",
        "wellbeing_low_share",
        "wellbeing_improved_share",
        "satisfaction_mean",
        "engaged_employees",
    }  # engaged_employees: per service and topic
    monthly = run_release(rsettings, C, "2025-01", requested_by="t")
    # engagement is paid by each month, wellbeing / services / topics once by the quarter
    cap = DEFAULT_POLICY.cap.value
    assert monthly.cost.rho == pytest.approx(cap * 0.5 / 12)  # type: ignore[union-attr]
    assert out.cost.rho == pytest.approx(cap * 0.5 / 5)  # type: ignore[union-attr]
    # the monthly release of a customer whose wellbeing is monthly pays it every month instead
    with control_connection(rsettings) as con:
        set_policy_value(con, "granularity.wellbeing", "month", customer_id=CUSTOMERS[1], changed_by="po")
    other = run_release(rsettings, CUSTOMERS[1], "2025-01", requested_by="t")
    assert other.cost.rho == pytest.approx(cap * 0.8 / 12)  # type: ignore[union-attr]


def test_late_events_never_change_a_published_value(rsettings: Settings, tmp_path) -> None:
    from pipeline.ingest import ingest_files
    from pipeline.synthetic import generate

    run_release(rsettings, C, "2025-03", requested_by="t")
    before = published(rsettings, CELLS, [C, "2025-03"])
    with raw_connection(rsettings, read_only=True) as con:
        n_before = con.execute("SELECT count(*) FROM events WHERE customer_id = ?", [C]).fetchone()[0]
    # a late delivery: a different synthetic export for the same customers and months
    late = generate(tmp_path / "late", customers=1, employees=300, months=3, seed=99, start="2025-01")
    reports, refused = ingest_files(rsettings, list(late.events))
    assert not refused
    with raw_connection(rsettings, read_only=True) as con:
        n_after = con.execute("SELECT count(*) FROM events WHERE customer_id = ?", [C]).fetchone()[0]
    assert n_after > n_before  # the late events are stored in the raw store...
    out = run_release(rsettings, C, "2025-03", requested_by="t")
    assert out.status == "served_stored"
    assert published(rsettings, CELLS, [C, "2025-03"]) == before  # ...but the published values do not move
