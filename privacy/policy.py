"""The release policy: one privacy dial (annual ε), thresholds, bounds, cadence; validated at the edge.

Privacy reason: every number that bounds what one employee can reveal (the annual ε and δ,
the contribution bounds, k and z) lives in one frozen, validated value object, so a
nonsensical setting is refused with a clear message before anything is drawn, and a risky
one (:func:`policy_warnings`) is accepted only with a warning that is recorded with the change.

**One dial.** A privacy officer sets ``epsilon_annual`` (at ``delta``): the loss one employee
may incur from the releases of any 12 months. It fixes the rolling cap in the ledger's
currency, ρ = :func:`~privacy.budget.rho_for_epsilon` (ε, δ), and every release's cost is
derived from it: a table's ``table_shares`` of the cap (after the ``reserve_share`` kept for
re-issues), divided by the releases of that table one rolling window can hold (12 monthly, or 5
quarterly: a quarter that straddles the window's edge counts in full). So a steady year of
releases spends exactly the cap and never more. Inside a release the budget goes to the
measured figures by documented weights (:mod:`privacy.plan`).

Defaults (``docs/privacy-model.md`` §6): ε = 8 per employee per year at δ = 10⁻⁶ (ρ ≈ 0.91),
engagement monthly, wellbeing, services and topics quarterly.

>>> round(DEFAULT_POLICY.cap.value, 4), DEFAULT_POLICY.epsilon_annual
(0.9097, 8.0)
>>> apply_policy_updates(DEFAULT_POLICY, {"k": parse_policy_value("k", "12")}).k
12
>>> policy_warnings(apply_policy_updates(DEFAULT_POLICY, {"z": 0.0}))[0][:18]
'z = 0: a group is '
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from privacy.budget import Budget, PureEpsilon, Rho, implied_epsilon, rho_for_epsilon
from privacy.periods import parse_period

__all__ = [
    "TABLES",
    "LEVELS",
    "RATIO_METRICS",
    "ASSUMPTIONS",
    "WINDOW_RELEASES",
    "PolicyError",
    "ReleasePolicy",
    "DEFAULT_POLICY",
    "POLICY_KEYS",
    "LEGACY_KEYS",
    "implied_epsilon",
    "parse_policy_value",
    "apply_policy_updates",
    "policy_to_flat",
    "policy_warnings",
]

TABLES: tuple[str, ...] = ("engagement", "wellbeing", "services", "topics")
# Breakdown levels of the people tables (engagement, wellbeing): the organisation total and the
# three public partitions of its staff.
LEVELS: tuple[str, ...] = ("total", "department", "site", "role")
# Published ratios whose interval width is bounded by ``max_interval_width`` (in the metric's unit).
RATIO_METRICS: tuple[str, ...] = ("who5_mean", "wellbeing_low_share", "wellbeing_improved_share", "satisfaction_mean")
# Public planning assumptions (shares of a group's public headcount): used only to decide, before
# drawing, which breakdowns can be informative and to preview widths. Never read from data.
ASSUMPTIONS: tuple[str, ...] = (
    "monthly_uptake", "quarterly_uptake", "scored_share", "repeat_scored_share", "rated_share",
)  # fmt: skip
# Releases of one table that one rolling 12-month window can hold: 12 months, or 5 quarters
# (a window not aligned to quarters overlaps five, and a straddling quarter counts in full).
WINDOW_RELEASES: dict[str, int] = {"month": 12, "quarter": 5}

EPSILON_MAX = 20.0  # hard upper bound of the annual ε: above it a release protects next to nothing
EPSILON_WARN = 10.0  # above this annual ε a change is accepted only with a recorded warning
DELTA_MAX = 1e-5
K_WARN = 5


class PolicyError(ValueError):
    """A policy value is invalid; the message says which key and what is accepted."""


def _default_shares() -> dict[str, float]:
    return {"engagement": 0.50, "wellbeing": 0.30, "services": 0.10, "topics": 0.10}


def _default_granularity() -> dict[str, Literal["month", "quarter"]]:
    return {"engagement": "month", "wellbeing": "quarter", "services": "quarter", "topics": "quarter"}


def _default_levels() -> dict[str, float]:
    # Organisation-level headline figures first: the total gets 6 of 9.5 parts when every
    # breakdown is measured (and more when a breakdown cannot be informative).
    return {"total": 6.0, "department": 1.5, "site": 1.0, "role": 1.0}


def _default_widths() -> dict[str, float]:
    # Full width of the 95 % interval above which a figure is "too uncertain to show".
    return {"who5_mean": 20.0, "wellbeing_low_share": 0.30, "wellbeing_improved_share": 0.30, "satisfaction_mean": 1.0}


def _default_assumptions() -> dict[str, float]:
    return {
        "monthly_uptake": 0.03,  # share of a group's headcount using the service in a month
        "quarterly_uptake": 0.06,  # ... in a quarter
        "scored_share": 0.65,  # of those, share with a WHO-5 score in the period
        "repeat_scored_share": 0.30,  # ... with at least two WHO-5 scores
        "rated_share": 0.65,  # ... with a satisfaction rating
    }


_WIDTH_MAX: dict[str, float] = {"who5_mean": 100.0, "wellbeing_low_share": 1.0, "wellbeing_improved_share": 1.0,
                                "satisfaction_mean": 4.0}  # fmt: skip


class ReleasePolicy(BaseModel):
    """What a customer's releases may spend and reveal.

    Privacy unit: one employee across all time. ``epsilon_annual`` at ``delta`` bounds the loss
    of the releases of any 12 months (the ledger's rolling cap, :attr:`cap`); each release costs
    :meth:`release_budget`, derived from it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(10, description="minimum group size: public roll-up and noisy-count suppression")
    k_scores: int = Field(10, description="minimum noisy count of people with a score for a mean or share")
    z: float = Field(1.645, description="suppression margin: publish iff noisy count >= k + z*sd")
    accounting: Literal["zcdp", "pure"] = "zcdp"
    epsilon_annual: float = Field(8.0, description="loss per employee of the releases of any 12 months, (eps, delta)")
    delta: float = Field(1e-6, description="delta of the annual (eps, delta) guarantee")
    reserve_share: float = Field(0.0, description="share of the annual budget kept free for re-issues")
    max_contacts_per_month: int = Field(8, description="contacts counted per employee and month")
    max_services_per_period: int = Field(2, description="services one employee counts towards per period")
    max_topics_per_period: int = Field(2, description="topics one employee counts towards per period")
    alpha: float = Field(0.05, description="intervals are 1 - alpha")
    granularity: dict[str, Literal["month", "quarter"]] = Field(default_factory=_default_granularity)
    table_shares: dict[str, float] = Field(default_factory=_default_shares)
    breakdown_weights: dict[str, float] = Field(default_factory=_default_levels)
    max_interval_width: dict[str, float] = Field(default_factory=_default_widths)
    assumptions: dict[str, float] = Field(default_factory=_default_assumptions)

    @field_validator("k", "k_scores")
    @classmethod
    def _k(cls, v: int, info: Any) -> int:
        if not 2 <= v <= 1000:
            raise ValueError(f"{info.field_name} must be between 2 and 1000 (got {v}); 10 is the documented default")
        return v

    @field_validator("z")
    @classmethod
    def _z(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0 or v > 10:
            raise ValueError(f"z must be between 0 and 10 (got {v}); 1.645 gives a one-sided 95 % margin")
        return v

    @field_validator("epsilon_annual")
    @classmethod
    def _epsilon(cls, v: float) -> float:
        if not math.isfinite(v) or not 0 < v <= EPSILON_MAX:
            raise ValueError(
                f"epsilon_annual must be above 0 and at most {EPSILON_MAX:g} (got {v}); 8 is the documented default"
            )
        return v

    @field_validator("delta")
    @classmethod
    def _delta(cls, v: float) -> float:
        if not (0 < v <= DELTA_MAX):
            raise ValueError(f"delta must be in (0, {DELTA_MAX:g}] (got {v}); use 1e-6 or less")
        return v

    @field_validator("reserve_share")
    @classmethod
    def _reserve(cls, v: float) -> float:
        if not (math.isfinite(v) and 0 <= v <= 0.5):
            raise ValueError(f"reserve_share must be between 0 and 0.5 (got {v})")
        return v

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: float) -> float:
        if not (0 < v < 0.5):
            raise ValueError(f"alpha must be in (0, 0.5) (got {v}); 0.05 gives 95 % intervals")
        return v

    @field_validator("max_contacts_per_month")
    @classmethod
    def _contacts(cls, v: int) -> int:
        if not 1 <= v <= 100:
            raise ValueError(f"max_contacts_per_month must be between 1 and 100 (got {v})")
        return v

    @field_validator("max_services_per_period", "max_topics_per_period")
    @classmethod
    def _groups(cls, v: int, info: Any) -> int:
        if not 1 <= v <= 8:
            raise ValueError(f"{info.field_name} must be between 1 and 8 (got {v})")
        return v

    @field_validator("granularity")
    @classmethod
    def _granularity(cls, v: dict[str, str]) -> dict[str, str]:
        _known(v, TABLES, "granularity", "tables")
        defaults = _default_granularity()
        return {t: v.get(t, defaults[t]) for t in TABLES}

    @field_validator("table_shares")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        _known(v, TABLES, "table_shares", "tables")
        merged = {t: float(v.get(t, _default_shares()[t])) for t in TABLES}
        bad = {t: w for t, w in merged.items() if not (math.isfinite(w) and 0 <= w <= 1)}
        if bad:
            raise ValueError(f"table_shares must be numbers between 0 and 1 (got {bad}); 0 = table not released")
        if sum(merged.values()) <= 0:
            raise ValueError("table_shares: at least one table needs a share above 0")
        return merged

    @field_validator("breakdown_weights")
    @classmethod
    def _levels(cls, v: dict[str, float]) -> dict[str, float]:
        _known(v, LEVELS, "breakdown_weights", "levels")
        merged = {lv: float(v.get(lv, _default_levels()[lv])) for lv in LEVELS}
        bad = {lv: w for lv, w in merged.items() if not (math.isfinite(w) and 0 <= w <= 100)}
        if bad:
            raise ValueError(f"breakdown_weights must be numbers between 0 and 100 (got {bad}); 0 = never measured")
        if merged["total"] <= 0:
            raise ValueError("breakdown_weights.total must be above 0: the organisation total is always measured")
        return merged

    @field_validator("max_interval_width")
    @classmethod
    def _widths(cls, v: dict[str, float]) -> dict[str, float]:
        _known(v, RATIO_METRICS, "max_interval_width", "metrics")
        merged = {m: float(v.get(m, _default_widths()[m])) for m in RATIO_METRICS}
        bad = {m: w for m, w in merged.items() if not (math.isfinite(w) and 0 < w <= _WIDTH_MAX[m])}
        if bad:
            raise ValueError(
                f"max_interval_width must be above 0 and at most the metric's range {_WIDTH_MAX} (got {bad})"
            )
        return merged

    @field_validator("assumptions")
    @classmethod
    def _assumptions(cls, v: dict[str, float]) -> dict[str, float]:
        _known(v, ASSUMPTIONS, "assumptions", "assumptions")
        merged = {a: float(v.get(a, _default_assumptions()[a])) for a in ASSUMPTIONS}
        bad = {a: w for a, w in merged.items() if not (math.isfinite(w) and 0 < w <= 1)}
        if bad:
            raise ValueError(f"assumptions must be shares in (0, 1] (got {bad})")
        return merged

    @model_validator(mode="after")
    def _consistent(self) -> ReleasePolicy:
        if not any(self.tables_for(g) for g in WINDOW_RELEASES):
            raise ValueError("no table is released: give at least one table a share above 0")
        return self

    # -- derived, data-free -------------------------------------------------------------
    @property
    def cap(self) -> Rho:
        """The rolling 12-month cap in the ledger's currency: ρ with ε_annual at δ."""
        return Rho(rho_for_epsilon(self.epsilon_annual, self.delta))

    def scaled_shares(self) -> dict[str, float]:
        """Each table's share of the annual budget (shares normalised to sum to 1 − reserve)."""
        total = sum(self.table_shares.values())
        return {t: (1.0 - self.reserve_share) * w / total for t, w in self.table_shares.items()}

    def tables_for(self, granularity: str) -> tuple[str, ...]:
        """The tables released in a period of this granularity (tables with a share above 0)."""
        return tuple(t for t in TABLES if self.granularity[t] == granularity and self.table_shares[t] > 0)

    def table_rho(self, table: str) -> float:
        """The ledger charge (ρ) of ``table`` in one of its releases: its share of the cap over the window's releases."""
        return self.cap.value * self.scaled_shares()[table] / WINDOW_RELEASES[self.granularity[table]]

    def release_tables(self, period: str) -> dict[str, float]:
        """The tables released in ``period`` and each one's fraction of the release's budget."""
        p = parse_period(period)
        tables = self.tables_for(p.granularity)
        if not tables:
            raise ValueError(
                f"no table is released per {p.granularity} under this policy (granularity={self.granularity}); "
                f"period {period} has nothing to release"
            )
        total = sum(self.table_rho(t) for t in tables)
        return {t: self.table_rho(t) / total for t in tables}

    def release_budget(self, period: str) -> Budget:
        """The budget of the release of ``period``: its tables' charges together (data-free)."""
        return self._typed(sum(self.table_rho(t) for t in self.release_tables(period)))

    def _typed(self, rho: float) -> Budget:
        # Pure DP: the release's ε is chosen so that its ledger charge ε²/2 equals the zCDP cost.
        return PureEpsilon(math.sqrt(2.0 * rho)) if self.accounting == "pure" else Rho(rho)

    def annual_epsilon(self) -> float:
        """The annual (ε, δ)-DP guarantee: spending the whole rolling cap."""
        return self.epsilon_annual


def _known(values: Mapping[str, object], known: tuple[str, ...], key: str, what: str) -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{key}: unknown {what} {unknown}; {what} are {list(known)}")


DEFAULT_POLICY = ReleasePolicy()


def policy_warnings(policy: ReleasePolicy) -> list[str]:
    """Loud warnings for valid but risky settings; a change that causes one is recorded with it."""
    out = []
    if policy.z == 0:
        out.append(
            "z = 0: a group is shown as soon as its noisy count reaches k, so a group of k - 1 people is shown "
            "about half the time; the documented margin is 1.645"
        )
    for key in ("k", "k_scores"):
        value = getattr(policy, key)
        if value < K_WARN:
            out.append(f"{key} = {value}: figures about groups of fewer than {K_WARN} people can single people out")
    if policy.epsilon_annual > EPSILON_WARN:
        out.append(
            f"epsilon_annual = {policy.epsilon_annual:g}: above {EPSILON_WARN:g} the yearly guarantee is weak "
            f"(the documented default is 8)"
        )
    return out


# -- settable keys ------------------------------------------------------------------------------
def _parse_int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise PolicyError(f"expected a whole number, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise PolicyError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise PolicyError(f"expected a finite number, got {text!r}")
    return value


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = str(text).strip().lower()
        if value not in choices:
            raise PolicyError(f"expected one of {', '.join(choices)}; got {text!r}")
        return value

    return parse


POLICY_KEYS: dict[str, Callable[[str], object]] = {
    "k": _parse_int,
    "k_scores": _parse_int,
    "z": _parse_float,
    "epsilon_annual": _parse_float,
    "delta": _parse_float,
    "accounting": _parse_choice("zcdp", "pure"),
    "reserve_share": _parse_float,
    "alpha": _parse_float,
    "max_contacts_per_month": _parse_int,
    "max_services_per_period": _parse_int,
    "max_topics_per_period": _parse_int,
    **{f"granularity.{t}": _parse_choice("month", "quarter") for t in TABLES},
    **{f"table_shares.{t}": _parse_float for t in TABLES},
    **{f"breakdown_weights.{lv}": _parse_float for lv in LEVELS},
    **{f"max_interval_width.{m}": _parse_float for m in RATIO_METRICS},
    **{f"assumptions.{a}": _parse_float for a in ASSUMPTIONS},
}

# Keys of earlier versions, which set the budget per release: the budget now follows from the
# annual ε. A stored ``rho_cap_12m`` becomes the ε it implied (never a larger budget); the
# per-release keys and old aggregate weights are derived now and are dropped.
LEGACY_KEYS: tuple[str, ...] = ("rho_per_release", "rho_cap_12m", "epsilon_per_release")


def _translate_legacy(updates: Mapping[str, object], delta: float) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in updates.items():
        if key == "rho_cap_12m":
            rho = _parse_float(str(value))
            out.setdefault("epsilon_annual", min(EPSILON_MAX, implied_epsilon(max(rho, 1e-12), delta)))
        elif key in LEGACY_KEYS or key.startswith("weights."):
            continue
        else:
            out[key] = value
    return out


def parse_policy_value(key: str, text: str) -> object:
    """Parse the text of ``wellbeing policy set KEY VALUE`` (raises :class:`PolicyError`)."""
    if key not in POLICY_KEYS:
        hint = " (the budget is now set as epsilon_annual)" if key in LEGACY_KEYS else ""
        raise PolicyError(f"unknown policy key {key!r}{hint}; settable keys: {', '.join(POLICY_KEYS)}")
    try:
        return POLICY_KEYS[key](text)
    except PolicyError as exc:
        raise PolicyError(f"policy key {key!r}: {exc}") from None


def apply_policy_updates(base: ReleasePolicy, updates: Mapping[str, object], *, legacy: bool = False) -> ReleasePolicy:
    """A new, validated policy with ``updates`` (flat keys as in :data:`POLICY_KEYS`) applied.

    ``legacy=True`` (reading a control store written by an earlier version) translates
    :data:`LEGACY_KEYS` instead of refusing them.
    """
    if legacy:
        updates = _translate_legacy(updates, base.delta)
    data = base.model_dump()
    for key, value in updates.items():
        if key not in POLICY_KEYS:
            parse_policy_value(key, "")  # raises the explanation
        if isinstance(value, str):
            value = parse_policy_value(key, value)
        if "." in key:
            group, sub = key.split(".", 1)
            data[group] = {**data[group], sub: value}
        else:
            data[key] = value
    try:
        return ReleasePolicy(**data)
    except ValidationError as exc:
        raise PolicyError(_explain(exc)) from None


def policy_to_flat(policy: ReleasePolicy) -> dict[str, object]:
    """The policy as flat ``key -> value`` pairs (the keys of :data:`POLICY_KEYS`)."""
    data = policy.model_dump()
    flat: dict[str, object] = {}
    for key in POLICY_KEYS:
        if "." in key:
            group, sub = key.split(".", 1)
            flat[key] = data[group][sub]
        else:
            flat[key] = data[key]
    return flat


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "policy"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc not in msg else msg)
    return "invalid policy: " + "; ".join(parts)
