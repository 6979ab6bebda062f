"""Policy validation: nonsense is refused with a message naming the key and the fix."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from privacy.policy import (
    DEFAULT_POLICY,
    POLICY_KEYS,
    PolicyError,
    ReleasePolicy,
    apply_policy_updates,
    implied_epsilon,
    parse_policy_value,
    policy_to_flat,
)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("k", 1, "k must be at least 2"),
        ("k", 0, "k must be at least 2"),
        ("k_scores", 1, "k_scores must be at least 2"),
        ("z", -0.1, "z must be between 0 and 10"),
        ("rho_per_release", -0.5, "rho_per_release must be a positive number"),
        ("rho_per_release", 0.0, "rho_per_release must be a positive number"),
        ("rho_cap_12m", 0.1, "rho_cap_12m (0.1) is smaller than rho_per_release (0.25)"),
        ("delta", 0.01, "delta must be in (0, 1e-3]"),
        ("delta", 0.0, "delta must be in (0, 1e-3]"),
        ("epsilon_per_release", 50.0, "epsilon_per_release must be at most 5"),
        ("alpha", 0.9, "alpha must be in (0, 0.5)"),
        ("max_contacts_per_month", 0, "max_contacts_per_month must be between 1 and 100"),
        ("max_services_per_period", 0, "max_services_per_period must be between 1 and 8"),
    ],
)
def test_nonsense_is_rejected_with_a_clear_message(key, value, fragment):
    with pytest.raises(PolicyError, match=None) as err:
        apply_policy_updates(DEFAULT_POLICY, {key: value})
    assert fragment in str(err.value)
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValidationError):
        ReleasePolicy(**{**DEFAULT_POLICY.model_dump(), key: value})


def test_parse_policy_value_converts_and_explains():
    assert parse_policy_value("k", " 12 ") == 12
    assert parse_policy_value("rho_per_release", "0.1") == 0.1
    assert parse_policy_value("granularity.wellbeing", "Quarter") == "quarter"
    with pytest.raises(PolicyError, match="policy key 'k': expected a whole number, got 'ten'"):
        parse_policy_value("k", "ten")
    with pytest.raises(PolicyError, match="unknown policy key 'epsilon'; settable keys: k, k_scores"):
        parse_policy_value("epsilon", "1")
    with pytest.raises(PolicyError, match="expected one of month, quarter"):
        parse_policy_value("granularity.topics", "weekly")
    with pytest.raises(PolicyError, match="expected a finite number"):
        parse_policy_value("z", "nan")


def test_required_keys_are_settable_and_updates_validate():
    for key in ("k", "z", "rho_per_release", "rho_cap_12m", "k_scores", "accounting", "epsilon_per_release",
                "max_contacts_per_month", "max_services_per_period", "max_topics_per_period", "granularity.engagement"):
        assert key in POLICY_KEYS
    p = apply_policy_updates(DEFAULT_POLICY, {"k": "12", "granularity.wellbeing": "quarter", "rho_cap_12m": 4.0})
    assert (p.k, p.granularity["wellbeing"], p.granularity["engagement"], p.rho_cap_12m) == (12, "quarter", "month", 4.0)
    assert DEFAULT_POLICY.k == 10  # frozen: the base is unchanged
    assert policy_to_flat(p)["granularity.wellbeing"] == "quarter"
    with pytest.raises(ValidationError):
        p.k = 3  # type: ignore[misc]


def test_implied_epsilon_formula_and_default_annual_figure():
    rho, delta = 0.25, 1e-6
    assert implied_epsilon(rho, delta) == pytest.approx(rho + 2 * math.sqrt(rho * math.log(1 / delta)))
    assert DEFAULT_POLICY.annual_epsilon() == pytest.approx(15.87, abs=0.01)
    assert DEFAULT_POLICY.rho_cap_12m >= 12 * DEFAULT_POLICY.rho_per_release  # a year of monthly releases fits
