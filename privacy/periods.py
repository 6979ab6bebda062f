"""Release periods: ``'YYYY-MM'`` (a month) or ``'YYYY-Qn'`` (a quarter), and the rolling 12-month window.

Privacy reason: the budget cap is enforced over *every* rolling window of 12 months,
because the same employee appears in many periods (sequential composition). The
window arithmetic lives here so that the ledger, the CLI and the dashboards agree.

>>> parse_period("2025-Q2").months
('2025-04', '2025-05', '2025-06')
>>> window_start("2025-03")
'2024-04'
>>> window_start("2025-Q1")
'2024-04'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

Granularity = Literal["month", "quarter"]

WINDOW_MONTHS = 12

_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")


class PeriodError(ValueError):
    """A period label is not ``YYYY-MM`` or ``YYYY-Qn``."""


@dataclass(frozen=True)
class Period:
    """One release period: its label, granularity and the months it covers."""

    label: str
    granularity: Granularity
    year: int
    first_month: int  # 1..12

    @property
    def n_months(self) -> int:
        return 1 if self.granularity == "month" else 3

    @property
    def months(self) -> tuple[str, ...]:
        return tuple(_month_label(self.year, self.first_month + i) for i in range(self.n_months))

    @property
    def start(self) -> date:
        """First day of the period (inclusive)."""
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """First day after the period (exclusive)."""
        y, m = _add_months(self.year, self.first_month, self.n_months)
        return date(y, m, 1)

    @property
    def last_month(self) -> str:
        return self.months[-1]

    @property
    def last_month_start(self) -> date:
        y, m = _add_months(self.year, self.first_month, self.n_months - 1)
        return date(y, m, 1)


def parse_period(text: str) -> Period:
    """Parse ``'YYYY-MM'`` or ``'YYYY-Qn'``; raise :class:`PeriodError` with the accepted forms otherwise."""
    value = str(text).strip()
    if m := _MONTH_RE.match(value):
        return Period(value, "month", int(m.group(1)), int(m.group(2)))
    if q := _QUARTER_RE.match(value):
        quarter = int(q.group(2))
        return Period(value, "quarter", int(q.group(1)), 3 * (quarter - 1) + 1)
    raise PeriodError(f"period {text!r} is not valid: use YYYY-MM (e.g. 2025-03) or YYYY-Qn (e.g. 2025-Q1)")


def period_of_month(month: str, granularity: Granularity) -> str:
    """The label of the period of this granularity that contains ``month`` (``'YYYY-MM'``)."""
    p = parse_period(month)
    if granularity == "month":
        return p.label
    return f"{p.year}-Q{(p.first_month - 1) // 3 + 1}"


def month_range(first: str, last: str) -> list[str]:
    """All months from ``first`` to ``last`` inclusive, as ``'YYYY-MM'``."""
    a, b = parse_period(first), parse_period(last)
    out: list[str] = []
    y, m = a.year, a.first_month
    end = (b.year, b.first_month + b.n_months - 1)
    while (y, m) <= end:
        out.append(_month_label(y, m))
        y, m = _add_months(y, m, 1)
    return out


def window_start(period: str) -> str:
    """First month (``'YYYY-MM'``) of the rolling 12-month window that ends with ``period``'s last month."""
    p = parse_period(period)
    y, m = _add_months(p.year, p.first_month, p.n_months - WINDOW_MONTHS)
    return _month_label(y, m)


def window_months(period: str) -> tuple[str, ...]:
    """The 12 months of the rolling window ending with ``period``'s last month."""
    return tuple(month_range(window_start(period), parse_period(period).last_month))


def in_window(entry_period: str, window_end_period: str) -> bool:
    """Whether a ledger entry for ``entry_period`` counts in the window ending at ``window_end_period``.

    An entry counts when any of its months lies in the window (a quarter that straddles
    the window edge counts in full: conservative).
    """
    months = set(window_months(window_end_period))
    return any(m in months for m in parse_period(entry_period).months)


def max_window_spend(entries: Iterable[tuple[str, float]], period: str) -> float:
    """Largest ρ already spent in any 12-month window that would also contain ``period``.

    ``entries`` are ``(period, rho)`` ledger rows of one customer. Adding a release for
    ``period`` (also a back-filled, earlier one) must keep *every* window that contains it
    under the cap, so the caller passes this value as ``spent_in_window`` to
    :func:`privacy.budget.check_budget`.

    >>> max_window_spend([("2025-01", 0.25), ("2025-12", 0.25), ("2026-06", 0.25)], "2025-06")
    0.5
    """
    rows = [(parse_period(p), float(r)) for p, r in entries]
    target = parse_period(period)
    best = 0.0
    # every window that shares a month with the period: end months from its first month to 11 after its last
    for i in range(target.n_months + WINDOW_MONTHS - 1):
        ey, em = _add_months(target.year, target.first_month, i)
        end_label = _month_label(ey, em)
        months = set(window_months(end_label))
        spent = sum(r for p, r in rows if any(mm in months for mm in p.months))
        best = max(best, spent)
    return best


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _month_label(year: int, month: int) -> str:
    y, m = _add_months(year, month, 0) if not 1 <= month <= 12 else (year, month)
    return f"{y:04d}-{m:02d}"
