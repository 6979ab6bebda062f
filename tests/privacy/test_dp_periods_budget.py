"""Period parsing, rolling-window maths, release cost and the budget check."""

from __future__ import annotations

import math
from datetime import date

import pytest

from privacy.budget import (
    BudgetExceeded,
    Cost,
    PureEpsilon,
    Rho,
    check_budget,
    fits_under_cap,
    release_cost,
    window_start,
)
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
    monthly_rho = DEFAULT_POLICY.cap.value * 0.50 / 12  # engagement: half of the annual budget, 12 per window
    assert c == Cost(
        rho=pytest.approx(monthly_rho),
        epsilon=pytest.approx(implied_epsilon(monthly_rho, 1e-6)),
        delta=1e-6,
        accounting="zcdp",
    )
    assert isinstance(c.budget, Rho) and c.budget.value == c.rho
    quarterly = release_cost(DEFAULT_POLICY, "2025-Q1")
    assert quarterly.rho == pytest.approx(DEFAULT_POLICY.cap.value * 0.50 / 5)  # wellbeing + services + topics
    p = apply_policy_updates(DEFAULT_POLICY, {"granularity.wellbeing": "month"})
    assert release_cost(p, "2025-03").rho == pytest.approx(DEFAULT_POLICY.cap.value * (0.50 + 0.30) / 12)
    only_monthly = apply_policy_updates(
        DEFAULT_POLICY, {f"granularity.{t}": "month" for t in ("wellbeing", "services", "topics")}
    )
    with pytest.raises(ValueError, match="no table is released per quarter"):
        release_cost(only_monthly, "2025-Q1")
    pure = apply_policy_updates(DEFAULT_POLICY, {"accounting": "pure"})
    pc = release_cost(pure, "2025-03")
    # pure DP: the release's ε is chosen so that its ledger charge ε²/2 is the zCDP cost
    assert (pc.delta, pc.accounting) == (0.0, "pure") and pc.rho == pytest.approx(monthly_rho)
    assert pc.epsilon == pytest.approx(math.sqrt(2 * monthly_rho)) and isinstance(pc.budget, PureEpsilon)


def test_check_budget_refuses_with_spent_cap_and_needed():
    cost = release_cost(DEFAULT_POLICY, "2025-03")
    cap = DEFAULT_POLICY.cap.value
    check_budget("acme", "2025-03", cap - cost.rho, cost, DEFAULT_POLICY)  # the last release that fits, exactly
    with pytest.raises(BudgetExceeded) as err:
        check_budget("acme", "2025-03", cap - cost.rho / 2, cost, DEFAULT_POLICY)
    e = err.value
    assert (e.customer_id, e.period, e.cap, e.needed) == ("acme", "2025-03", cap, cost.rho)
    text = str(e)
    for fragment in (f"needs rho={cost.rho:.4g}", f"cap rho={cap:.4g}", "Nothing was drawn", "epsilon_annual"):
        assert fragment in text


def test_one_cap_comparison_with_one_tolerance():
    """Twelve releases of a twelfth of the cap fit exactly, despite float rounding; a hair more does not."""
    cap = Rho(0.9097068296901019)
    twelfth = Rho(cap.value / 12)
    spent = Rho(0.0)
    for _ in range(11):
        spent = spent + twelfth
    assert fits_under_cap(spent, twelfth, cap)
    assert not fits_under_cap(spent, Rho(twelfth.value * (1 + 1e-6)), cap)
    assert PureEpsilon(0.5).charge == Rho(0.125)
    with pytest.raises(ValueError):
        Rho(-1.0)
