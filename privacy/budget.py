"""Budget maths: the cost of one release (known before drawing) and the rolling-cap check.

Privacy reason: the same employee appears in every period, so the losses of a customer's
releases add up (sequential composition). The ledger sums ρ; a release that would push any
rolling 12-month window over ``rho_cap_12m`` is refused *before* noise is drawn.

Pure-DP releases are entered in the ledger as ρ = ε²/2, since ε-DP implies (ε²/2)-zCDP
(Bun & Steinke 2016, Prop. 1.4), so both kinds share one cap.

>>> from privacy.policy import DEFAULT_POLICY
>>> release_cost(DEFAULT_POLICY, "2025-03").rho
0.25
"""

from __future__ import annotations

from dataclasses import dataclass

from privacy.periods import parse_period, window_start
from privacy.policy import ReleasePolicy, implied_epsilon

__all__ = ["Cost", "BudgetExceeded", "release_cost", "check_budget", "window_start", "TOLERANCE"]

# Float slack when comparing sums of ρ against the cap (twelve 0.25 s must fit a 3.0 cap).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Cost:
    """The privacy loss of one release: ρ (ledger currency) and the (ε, δ) reported next to it."""

    rho: float
    epsilon: float
    delta: float
    accounting: str  # 'zcdp' | 'pure'


class BudgetExceeded(Exception):
    """A release would exceed the customer's rolling 12-month cap; nothing was drawn or spent."""

    def __init__(self, customer_id: str, period: str, spent: float, cap: float, needed: float) -> None:
        self.customer_id = customer_id
        self.period = period
        self.spent = spent
        self.cap = cap
        self.needed = needed
        super().__init__(
            f"release of {customer_id} {period} refused: it needs rho={needed:.4g}, but rho={spent:.4g} of the "
            f"rolling 12-month cap rho={cap:.4g} is already spent (window from {window_start(period)}); "
            f"remaining rho={max(cap - spent, 0.0):.4g}. Nothing was drawn, published or spent. A privacy "
            "officer may raise rho_cap_12m or lower rho_per_release (wellbeing policy set ...)."
        )


def release_cost(policy: ReleasePolicy, period: str) -> Cost:
    """The loss of the release of ``period`` under ``policy``: data-independent, known before drawing.

    It is exactly the budget handed to the OpenDP compositor of that release: the release
    budget times the weight share of the tables released at the period's granularity.
    """
    p = parse_period(period)
    tables = policy.tables_for(p.granularity)
    if not tables:
        raise ValueError(
            f"no table is released per {p.granularity} under this policy (granularity={policy.granularity}); "
            f"period {period} has nothing to release"
        )
    share = policy.weight_share(tables)
    if policy.accounting == "pure":
        epsilon = policy.epsilon_per_release * share
        return Cost(rho=epsilon * epsilon / 2.0, epsilon=epsilon, delta=0.0, accounting="pure")
    rho = policy.rho_per_release * share
    return Cost(rho=rho, epsilon=implied_epsilon(rho, policy.delta), delta=policy.delta, accounting="zcdp")


def check_budget(customer_id: str, period: str, spent_in_window: float, cost: Cost, policy: ReleasePolicy) -> None:
    """Raise :class:`BudgetExceeded` if ``spent_in_window + cost.rho`` exceeds ``policy.rho_cap_12m``.

    ``spent_in_window`` is the ρ already in the ledger for every rolling window containing
    ``period`` (use :func:`privacy.periods.max_window_spend`).
    """
    if spent_in_window < 0:
        raise ValueError(f"spent_in_window must be >= 0 (got {spent_in_window})")
    if spent_in_window + cost.rho > policy.rho_cap_12m * (1 + TOLERANCE) + TOLERANCE:
        raise BudgetExceeded(customer_id, period, spent_in_window, policy.rho_cap_12m, cost.rho)


def annual_loss(policy: ReleasePolicy) -> Cost:
    """The (ε, δ) implied by spending the whole rolling cap in a year."""
    return Cost(
        rho=policy.rho_cap_12m,
        epsilon=implied_epsilon(policy.rho_cap_12m, policy.delta),
        delta=policy.delta,
        accounting="zcdp",
    )
