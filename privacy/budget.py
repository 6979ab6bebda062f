"""Typed privacy budgets, the cost of one release (known before drawing) and the rolling-cap check.

Privacy reason: the same employee appears in every period, so the losses of a customer's
releases add up (sequential composition). A release that would push any rolling 12-month
window over the policy's cap is refused *before* noise is drawn.

A budget is a typed value, never a float beside an accounting string: :class:`Rho` (ρ-zCDP,
discrete Gaussian noise) or :class:`PureEpsilon` (ε-DP, discrete Laplace noise). Each knows its
own noise calibration, so no caller branches on the accounting. The ledger's currency is ρ: a
pure-DP release of ε is charged ε²/2, since ε-DP implies (ε²/2)-zCDP (Bun & Steinke 2016,
Prop. 1.4), so both kinds share one cap and one comparison (:func:`fits_under_cap`).

>>> from privacy.policy import DEFAULT_POLICY
>>> round(release_cost(DEFAULT_POLICY, "2025-03").rho, 5)
0.0379
>>> fits_under_cap(Rho(0.5), Rho(0.4), Rho(0.9))
True
>>> fits_under_cap(Rho(0.5), Rho(0.41), Rho(0.9))
False
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, ClassVar

from privacy.periods import window_start

if TYPE_CHECKING:
    from privacy.policy import ReleasePolicy

__all__ = [
    "Budget",
    "Rho",
    "PureEpsilon",
    "Cost",
    "BudgetExceeded",
    "release_cost",
    "check_budget",
    "fits_under_cap",
    "window_start",
    "implied_epsilon",
    "rho_for_epsilon",
    "RELATIVE_SLACK",
]

# The one tolerance of every cap comparison: planned costs are sums of float shares of the cap, so a
# year that fits exactly can exceed it by rounding (e.g. 12 × (cap / 12)). 1e-9 of the cap is far
# below any loss that matters and far above float rounding.
RELATIVE_SLACK = 1e-9
_STD = NormalDist()


def implied_epsilon(rho: float, delta: float) -> float:
    """ε of (ε, δ)-DP implied by ρ-zCDP: ε = ρ + 2·√(ρ·ln(1/δ)) (Bun & Steinke 2016, Prop. 1.3).

    >>> round(implied_epsilon(3.0, 1e-6), 1)
    15.9
    """
    if rho < 0 or not (0 < delta < 1):
        raise ValueError(f"implied_epsilon needs rho >= 0 and 0 < delta < 1 (got rho={rho}, delta={delta})")
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def rho_for_epsilon(epsilon: float, delta: float) -> float:
    """The largest ρ whose :func:`implied_epsilon` at ``delta`` is ``epsilon`` (the inverse).

    >>> round(rho_for_epsilon(8.0, 1e-6), 4)
    0.9097
    """
    if epsilon <= 0 or not (0 < delta < 1):
        raise ValueError(f"rho_for_epsilon needs epsilon > 0 and 0 < delta < 1 (got {epsilon}, {delta})")
    root = -math.sqrt(math.log(1.0 / delta)) + math.sqrt(math.log(1.0 / delta) + epsilon)
    return root * root


@dataclass(frozen=True)
class Budget(ABC):
    """A privacy loss in one accounting; subclasses calibrate noise for it."""

    value: float
    accounting: ClassVar[str]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"a privacy budget must be a finite number >= 0 (got {self.value!r})")

    def scaled(self, fraction: float) -> Budget:
        """This budget times ``fraction`` (a share of it), same accounting."""
        return type(self)(self.value * fraction)

    @property
    @abstractmethod
    def charge(self) -> Rho:
        """What the ledger is charged (ρ, the common currency)."""

    @abstractmethod
    def epsilon(self, delta: float) -> float:
        """The ε reported beside it ((ε, δ)-DP for zCDP; ε itself for pure DP)."""

    @abstractmethod
    def noise_scale(self, bound: float, cells: int) -> float:
        """Scale of the noise giving this loss to an aggregate with per-cell bound ``bound`` over ``cells`` cells."""

    @abstractmethod
    def loss(self, bound: float, cells: int, scale: float) -> float:
        """The loss, in this accounting, of noise ``scale`` on such an aggregate (the inverse of noise_scale)."""

    @abstractmethod
    def noise_sd(self, scale: float) -> float:
        """Standard deviation of the noise of ``scale`` (continuous approximation of the discrete noise)."""

    @abstractmethod
    def halfwidth(self, scale: float, alpha: float) -> float:
        """Half-width of the central 1 − ``alpha`` interval of the noise of ``scale``."""

    def opendp_loss(self) -> dict[str, float]:
        """Keyword for OpenDP's ``loss_of``/``query`` in this accounting."""
        return {self.opendp_key: self.value}

    opendp_key: ClassVar[str]


# Noise scales a hair larger, so float rounding never makes OpenDP account more than the share.
SCALE_SLACK = 1 + 1e-9


@dataclass(frozen=True)
class Rho(Budget):
    """ρ-zCDP (discrete Gaussian noise): σ = b·√(L₀ / (2ρ)), so ρ = b²·L₀ / (2σ²)."""

    accounting: ClassVar[str] = "zcdp"
    opendp_key: ClassVar[str] = "rho"

    def __add__(self, other: Rho) -> Rho:
        return Rho(self.value + other.value)

    @property
    def charge(self) -> Rho:
        return self

    def epsilon(self, delta: float) -> float:
        return implied_epsilon(self.value, delta)

    def noise_scale(self, bound: float, cells: int) -> float:
        return bound * math.sqrt(cells / (2.0 * self.value)) * SCALE_SLACK

    def loss(self, bound: float, cells: int, scale: float) -> float:
        return bound**2 * cells / (2 * scale**2)

    def noise_sd(self, scale: float) -> float:
        return scale

    def halfwidth(self, scale: float, alpha: float) -> float:
        return _STD.inv_cdf(1 - alpha / 2) * scale


@dataclass(frozen=True)
class PureEpsilon(Budget):
    """ε-DP (discrete Laplace noise): scale = b·L₀ / ε; charged ε²/2 in the ledger."""

    accounting: ClassVar[str] = "pure"
    opendp_key: ClassVar[str] = "epsilon"

    @property
    def charge(self) -> Rho:
        return Rho(self.value * self.value / 2.0)

    def epsilon(self, delta: float) -> float:
        return self.value

    def noise_scale(self, bound: float, cells: int) -> float:
        return bound * cells / self.value * SCALE_SLACK

    def loss(self, bound: float, cells: int, scale: float) -> float:
        return bound * cells / scale

    def noise_sd(self, scale: float) -> float:
        return math.sqrt(2.0) * scale

    def halfwidth(self, scale: float, alpha: float) -> float:
        return scale * math.log(1 / alpha)


def fits_under_cap(spent: Rho, cost: Rho, cap: Rho) -> bool:
    """Whether ``spent + cost`` stays within ``cap``: THE cap comparison (one tolerance, :data:`RELATIVE_SLACK`)."""
    return spent.value + cost.value <= cap.value * (1 + RELATIVE_SLACK)


@dataclass(frozen=True)
class Cost:
    """The privacy loss of one release as the ledger records it: ρ (the currency) and the (ε, δ) beside it."""

    rho: float
    epsilon: float
    delta: float
    accounting: str  # 'zcdp' | 'pure' (the ledger's column; the typed value is ``budget``)

    @classmethod
    def of(cls, budget: Budget, delta: float) -> Cost:
        pure = isinstance(budget, PureEpsilon)
        return cls(budget.charge.value, budget.epsilon(delta), 0.0 if pure else delta, budget.accounting)

    @property
    def budget(self) -> Budget:
        return PureEpsilon(self.epsilon) if self.accounting == "pure" else Rho(self.rho)


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
            "officer may raise epsilon_annual or reserve budget for re-issues (wellbeing policy set ...)."
        )


def release_cost(policy: ReleasePolicy, period: str) -> Cost:
    """The loss of the release of ``period`` under ``policy``: data-independent, known before drawing.

    It is exactly the budget handed to the OpenDP compositors of that release
    (:meth:`privacy.policy.ReleasePolicy.release_budget`).
    """
    return Cost.of(policy.release_budget(period), policy.delta)


def check_budget(customer_id: str, period: str, spent_in_window: float, cost: Cost, policy: ReleasePolicy) -> None:
    """Raise :class:`BudgetExceeded` unless ``spent_in_window + cost`` fits the policy's cap (:func:`fits_under_cap`).

    ``spent_in_window`` is the ρ already in the ledger for every rolling window containing
    ``period`` (use :func:`privacy.periods.max_window_spend`).
    """
    if spent_in_window < 0:
        raise ValueError(f"spent_in_window must be >= 0 (got {spent_in_window})")
    if not fits_under_cap(Rho(spent_in_window), Rho(cost.rho), policy.cap):
        raise BudgetExceeded(customer_id, period, spent_in_window, policy.cap.value, cost.rho)
