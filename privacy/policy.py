"""The release policy: thresholds, budget, contribution bounds, granularity; validated at the edge.

Privacy reason: every number that bounds what one employee can reveal (ρ per release,
the rolling cap, the contribution bounds, k and z) lives in one frozen, validated value
object, so a nonsensical setting is refused with a clear message before anything is drawn.

Defaults (see ``docs/privacy-model.md``): ρ = 0.25 per monthly release, a rolling 12-month cap
of ρ = 3.0 (twelve monthly releases), which implies ε ≈ 15.9 at δ = 1e-6 per year.

>>> round(implied_epsilon(3.0, 1e-6), 1)
15.9
>>> apply_policy_updates(DEFAULT_POLICY, {"k": parse_policy_value("k", "12")}).k
12
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TABLES: tuple[str, ...] = ("engagement", "wellbeing", "services", "topics")

# One noisy aggregate per key; the release ρ is split over them in proportion to the weights.
# table -> aggregates measured for it.
TABLE_AGGREGATES: dict[str, tuple[str, ...]] = {
    "engagement": ("engaged", "contacts"),
    "wellbeing": ("who5_sum", "who5_n", "satisfaction_sum", "satisfaction_n"),
    "services": ("service_engaged",),
    "topics": ("topic_engaged",),
}
AGGREGATES: tuple[str, ...] = tuple(a for t in TABLES for a in TABLE_AGGREGATES[t])

DEFAULT_WEIGHTS: dict[str, float] = {
    "engaged": 0.30,  # drives uptake and every suppression decision: the largest share
    "contacts": 0.10,
    "who5_sum": 0.12,  # sum:count = 2:1 roughly minimises the variance of a mean near mid-scale
    "who5_n": 0.06,
    "satisfaction_sum": 0.06,
    "satisfaction_n": 0.05,
    "service_engaged": 0.155,
    "topic_engaged": 0.155,
}


class PolicyError(ValueError):
    """A policy value is invalid; the message says which key and what is accepted."""


class ReleasePolicy(BaseModel):
    """What one customer-period release may spend and reveal.

    Privacy unit: one employee across all time. Each release costs ``rho_per_release``
    (zCDP) or ``epsilon_per_release`` (pure DP) in full when every table is released at the
    period's granularity; a table released quarterly is paid by the quarterly release.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(10, description="minimum group size: public roll-up and noisy-count suppression")
    k_scores: int = Field(10, description="minimum noisy count of scorers for WHO-5/satisfaction means")
    z: float = Field(1.645, description="suppression margin: publish iff noisy count >= k + z*sigma")
    rho_per_release: float = Field(0.25, description="zCDP budget of one release")
    rho_cap_12m: float = Field(3.0, description="rolling 12-month zCDP cap per customer")
    accounting: Literal["zcdp", "pure"] = "zcdp"
    epsilon_per_release: float = Field(1.0, description="pure-DP budget of one release (accounting=pure)")
    delta: float = Field(1e-6, description="delta used to report (epsilon, delta) from rho")
    max_contacts_per_month: int = Field(8, description="contacts counted per employee and month")
    max_services_per_period: int = Field(2, description="services one employee counts towards per period")
    max_topics_per_period: int = Field(2, description="topics one employee counts towards per period")
    alpha: float = Field(0.05, description="intervals are 1 - alpha")
    granularity: dict[str, Literal["month", "quarter"]] = Field(
        default_factory=lambda: {t: "month" for t in TABLES}
    )
    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @field_validator("k")
    @classmethod
    def _k(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"k must be at least 2 (got {v}); 10 is the documented default")
        return v

    @field_validator("k_scores")
    @classmethod
    def _k_scores(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"k_scores must be at least 2 (got {v})")
        return v

    @field_validator("z")
    @classmethod
    def _z(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0 or v > 10:
            raise ValueError(f"z must be between 0 and 10 (got {v}); 1.645 gives a one-sided 95 % margin")
        return v

    @field_validator("rho_per_release", "rho_cap_12m", "epsilon_per_release")
    @classmethod
    def _positive_budget(cls, v: float, info: Any) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{info.field_name} must be a positive number (got {v})")
        return v

    @field_validator("epsilon_per_release")
    @classmethod
    def _epsilon_max(cls, v: float) -> float:
        if v > 5:
            raise ValueError(f"epsilon_per_release must be at most 5 (got {v}): larger values give no privacy")
        return v

    @field_validator("delta")
    @classmethod
    def _delta(cls, v: float) -> float:
        if not (0 < v <= 1e-3):
            raise ValueError(f"delta must be in (0, 1e-3] (got {v}); use about 1/(10 * number of employees) or less")
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
        unknown = sorted(set(v) - set(TABLES))
        if unknown:
            raise ValueError(f"granularity: unknown table(s) {unknown}; tables are {list(TABLES)}")
        return {t: v.get(t, "month") for t in TABLES}

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(AGGREGATES))
        if unknown:
            raise ValueError(f"weights: unknown aggregate(s) {unknown}; aggregates are {list(AGGREGATES)}")
        merged = {a: float(v.get(a, DEFAULT_WEIGHTS[a])) for a in AGGREGATES}
        bad = {a: w for a, w in merged.items() if not (math.isfinite(w) and w > 0)}
        if bad:
            raise ValueError(f"weights must be positive numbers (got {bad})")
        return merged

    @model_validator(mode="after")
    def _cap(self) -> "ReleasePolicy":
        if self.rho_cap_12m < self.rho_per_release:
            raise ValueError(
                f"rho_cap_12m ({self.rho_cap_12m}) is smaller than rho_per_release ({self.rho_per_release}): "
                "not even one release would fit; raise the cap or lower rho_per_release"
            )
        if self.accounting == "pure" and self.epsilon_per_release**2 / 2 > self.rho_cap_12m:
            raise ValueError(
                f"epsilon_per_release={self.epsilon_per_release} costs rho={self.epsilon_per_release**2 / 2:g} "
                f"(pure DP implies eps^2/2-zCDP), above rho_cap_12m={self.rho_cap_12m}"
            )
        return self

    # -- derived, data-free -------------------------------------------------------------
    def tables_for(self, granularity: str) -> tuple[str, ...]:
        """The tables released in a period of this granularity."""
        return tuple(t for t in TABLES if self.granularity[t] == granularity)

    def weight_share(self, tables: tuple[str, ...]) -> float:
        """Fraction of the release budget paid by a release that contains ``tables``."""
        total = sum(self.weights.values())
        return sum(self.weights[a] for t in tables for a in TABLE_AGGREGATES[t]) / total

    def annual_epsilon(self) -> float:
        """The (ε, δ)-DP ε implied by spending the whole rolling cap (ρ_cap at ``delta``)."""
        return implied_epsilon(self.rho_cap_12m, self.delta)


def implied_epsilon(rho: float, delta: float) -> float:
    """ε of (ε, δ)-DP implied by ρ-zCDP: ε = ρ + 2·√(ρ·ln(1/δ)) (Bun & Steinke 2016, Prop. 1.3)."""
    if rho < 0 or not (0 < delta < 1):
        raise ValueError(f"implied_epsilon needs rho >= 0 and 0 < delta < 1 (got rho={rho}, delta={delta})")
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


DEFAULT_POLICY = ReleasePolicy()


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
    "rho_per_release": _parse_float,
    "rho_cap_12m": _parse_float,
    "accounting": _parse_choice("zcdp", "pure"),
    "epsilon_per_release": _parse_float,
    "delta": _parse_float,
    "alpha": _parse_float,
    "max_contacts_per_month": _parse_int,
    "max_services_per_period": _parse_int,
    "max_topics_per_period": _parse_int,
    **{f"granularity.{t}": _parse_choice("month", "quarter") for t in TABLES},
    **{f"weights.{a}": _parse_float for a in AGGREGATES},
}


def parse_policy_value(key: str, text: str) -> object:
    """Parse the text of ``wellbeing policy set KEY VALUE`` (raises :class:`PolicyError`)."""
    if key not in POLICY_KEYS:
        raise PolicyError(f"unknown policy key {key!r}; settable keys: {', '.join(POLICY_KEYS)}")
    try:
        return POLICY_KEYS[key](text)
    except PolicyError as exc:
        raise PolicyError(f"policy key {key!r}: {exc}") from None


def apply_policy_updates(base: ReleasePolicy, updates: Mapping[str, object]) -> ReleasePolicy:
    """A new, validated policy with ``updates`` (flat keys as in :data:`POLICY_KEYS`) applied."""
    data = base.model_dump()
    for key, value in updates.items():
        if key not in POLICY_KEYS:
            raise PolicyError(f"unknown policy key {key!r}; settable keys: {', '.join(POLICY_KEYS)}")
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
