"""Period parsing, rolling-window maths, release cost and the budget check."""

from __future__ import annotations

from datetime import date

import pytest

from privacy.budget import BudgetExceeded, Cost, check_budget, release_cost, window_start
from privacy.periods import (
    PeriodError,
    in_window,
    max_window_spend,
    month_range,
    parse_period,
    period_of_month,
    window_months,
)
from privacy.policy import DEFAULT_POLICY, apply_policy_updates, implied_epsilon


def test_parse_month_and_quarter():
    m = parse_period("2025-03")
    assert (m.granularity, m.start, m.end, m.months) == ("month", date(2025, 3, 1), date(2025, 4, 1), ("2025-03",))
    q = parse_period("2025-Q4")
    assert (q.granularity, q.start, q.end) == ("quarter", date(2025, 10, 1), date(2026, 1, 1))
    assert q.months == ("2025-10", "2025-11", "2025-12")
    for bad in ("2025-13", "2025-3", "25-03", "2025-Q5", "2025/03", ""):
        with pytest.raises(PeriodError, match="use YYYY-MM"):
            parse_period(bad)
    assert period_of_month("2025-08", "quarter") == "2025-Q3"


def test_window_maths():
    assert window_start("2025-03") == "2024-04"
    assert window_start("2025-12") == "2025-01"
    assert window_start("2025-Q1") == "2024-04"
    assert len(window_months("2025-Q2")) == 12 and window_months("2025-Q2")[-1] == "2025-06"
    assert month_range("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert in_window("2024-04", "2025-03") and not in_window("2024-03", "2025-03")
    assert in_window("2024-Q2", "2025-04")  # a straddling quarter counts in full


def test_max_window_spend_covers_backfills():
    entries = [(f"2025-{m:02d}", 0.25) for m in range(2, 13)]  # Feb..Dec already released
    # back-filling January: the window Jan..Dec would hold 11 × 0.25 already
    assert max_window_spend(entries, "2025-01") == pytest.approx(2.75)
    assert max_window_spend([("2023-01", 1.0)], "2025-01") == 0.0


def test_release_cost_is_data_independent_and_follows_granularity():
    c = release_cost(DEFAULT_POLICY, "2025-03")
    assert c == Cost(rho=0.25, epsilon=implied_epsilon(0.25, 1e-6), delta=1e-6, accounting="zcdp")
    p = apply_policy_updates(DEFAULT_POLICY, {"granularity.wellbeing": "quarter"})
    monthly, quarterly = release_cost(p, "2025-03"), release_cost(p, "2025-Q1")
    assert monthly.rho + quarterly.rho == pytest.approx(0.25)
    assert quarterly.rho == pytest.approx(0.25 * (0.12 + 0.06 + 0.06 + 0.05))
    with pytest.raises(ValueError, match="no table is released per quarter"):
        release_cost(DEFAULT_POLICY, "2025-Q1")
    pure = apply_policy_updates(DEFAULT_POLICY, {"accounting": "pure", "epsilon_per_release": 1.0})
    pc = release_cost(pure, "2025-03")
    assert (pc.epsilon, pc.delta, pc.rho, pc.accounting) == (1.0, 0.0, 0.5, "pure")


def test_check_budget_refuses_with_spent_cap_and_needed():
    cost = release_cost(DEFAULT_POLICY, "2025-03")
    check_budget("acme", "2025-03", 2.75, cost, DEFAULT_POLICY)  # the 12th monthly release fits exactly
    with pytest.raises(BudgetExceeded) as err:
        check_budget("acme", "2025-03", 2.9, cost, DEFAULT_POLICY)
    e = err.value
    assert (e.customer_id, e.period, e.spent, e.cap, e.needed) == ("acme", "2025-03", 2.9, 3.0, 0.25)
    text = str(e)
    for fragment in ("needs rho=0.25", "rho=2.9", "cap rho=3", "Nothing was drawn"):
        assert fragment in text
