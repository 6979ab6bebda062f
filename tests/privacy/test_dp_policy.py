"""Policy validation: nonsense is refused with a message naming the key and the fix; risky values warn."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from privacy.budget import implied_epsilon, release_cost, rho_for_epsilon
from privacy.policy import (
    DEFAULT_POLICY,
    LEGACY_KEYS,
    POLICY_KEYS,
    WINDOW_RELEASES,
    PolicyError,
    ReleasePolicy,
    apply_policy_updates,
    parse_policy_value,
    policy_to_flat,
    policy_warnings,
)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("k", 1, "k must be between 2 and 1000"),
        ("k", 5000, "k must be between 2 and 1000"),
        ("k_scores", 1, "k_scores must be between 2 and 1000"),
        ("z", -0.1, "z must be between 0 and 10"),
        ("epsilon_annual", 0.0, "epsilon_annual must be above 0 and at most 20"),
        ("epsilon_annual", 21.0, "epsilon_annual must be above 0 and at most 20"),
        ("epsilon_annual", 1e12, "epsilon_annual must be above 0 and at most 20"),
        ("delta", 0.01, "delta must be in (0, 1e-05]"),
        ("delta", 0.0, "delta must be in (0, 1e-05]"),
        ("reserve_share", 0.9, "reserve_share must be between 0 and 0.5"),
        ("alpha", 0.9, "alpha must be in (0, 0.5)"),
        ("max_contacts_per_month", 0, "max_contacts_per_month must be between 1 and 100"),
        ("max_services_per_period", 0, "max_services_per_period must be between 1 and 8"),
        ("table_shares.engagement", 5.0, "table_shares must be numbers between 0 and 1"),
        ("breakdown_weights.total", 0.0, "breakdown_weights.total must be above 0"),
        ("breakdown_weights.site", 1000.0, "breakdown_weights must be numbers between 0 and 100"),
        ("max_interval_width.wellbeing_low_share", 2.0, "max_interval_width must be above 0"),
        ("assumptions.monthly_uptake", 0.0, "assumptions must be shares in (0, 1]"),
    ],
)
def test_nonsense_is_rejected_with_a_clear_message(key, value, fragment):
    with pytest.raises(PolicyError) as err:
        apply_policy_updates(DEFAULT_POLICY, {key: value})
    assert fragment in str(err.value)
    assert isinstance(err.value, ValueError)


def test_every_key_that_touches_the_budget_has_an_upper_bound():
    """Today's 1e9 / 1e12 budgets are refused; the one dial (annual ε) has one consistent bound."""
    for key, huge in (
        ("epsilon_annual", "1e9"),
        ("delta", "0.5"),
        ("reserve_share", "2"),
        ("table_shares.wellbeing", "1e9"),
        ("breakdown_weights.department", "1e9"),
    ):
        with pytest.raises(PolicyError):
            apply_policy_updates(DEFAULT_POLICY, {key: huge})
    with pytest.raises(ValidationError):
        ReleasePolicy(**{**DEFAULT_POLICY.model_dump(), "epsilon_annual": 50.0})
    for legacy in LEGACY_KEYS:  # the old per-release dials are gone
        with pytest.raises(PolicyError, match="the budget is now set as epsilon_annual"):
            parse_policy_value(legacy, "0.1")


def test_risky_values_are_accepted_with_a_loud_warning():
    assert policy_warnings(DEFAULT_POLICY) == []
    risky = apply_policy_updates(DEFAULT_POLICY, {"z": 0.0, "k": 4, "epsilon_annual": 12.0})
    warnings = policy_warnings(risky)
    assert len(warnings) == 3
    assert any(w.startswith("z = 0") for w in warnings) and any(w.startswith("k = 4") for w in warnings)
    assert any("epsilon_annual = 12" in w for w in warnings)
    assert policy_warnings(apply_policy_updates(DEFAULT_POLICY, {"epsilon_annual": 10.0})) == []


def test_parse_policy_value_converts_and_explains():
    assert parse_policy_value("k", " 12 ") == 12
    assert parse_policy_value("epsilon_annual", "6") == 6.0
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
    for key in (
        "k",
        "z",
        "k_scores",
        "epsilon_annual",
        "delta",
        "accounting",
        "max_contacts_per_month",
        "max_services_per_period",
        "max_topics_per_period",
        "granularity.engagement",
        "table_shares.wellbeing",
        "breakdown_weights.total",
        "max_interval_width.who5_mean",
    ):
        assert key in POLICY_KEYS
    p = apply_policy_updates(DEFAULT_POLICY, {"k": "12", "granularity.wellbeing": "month", "epsilon_annual": 6.0})
    assert (p.k, p.granularity["wellbeing"], p.granularity["engagement"], p.epsilon_annual) == (
        12,
        "month",
        "month",
        6.0,
    )
    assert DEFAULT_POLICY.k == 10  # frozen: the base is unchanged
    assert policy_to_flat(p)["granularity.wellbeing"] == "month"
    with pytest.raises(ValidationError):
        p.k = 3  # type: ignore[misc]


def test_the_annual_epsilon_is_half_of_the_previous_default_and_a_year_of_releases_spends_exactly_the_cap():
    assert DEFAULT_POLICY.epsilon_annual == 8.0 <= implied_epsilon(3.0, 1e-6) / 1.98  # today's 15.9 halved
    assert DEFAULT_POLICY.cap.value == pytest.approx(rho_for_epsilon(8.0, 1e-6))
    assert implied_epsilon(DEFAULT_POLICY.cap.value, 1e-6) == pytest.approx(8.0)
    assert DEFAULT_POLICY.granularity == {
        "engagement": "month",
        "wellbeing": "quarter",
        "services": "quarter",
        "topics": "quarter",
    }
    # the busiest 12-month window holds 12 monthly and 5 quarterly releases (a straddling quarter counts in full)
    month, quarter = release_cost(DEFAULT_POLICY, "2025-03").rho, release_cost(DEFAULT_POLICY, "2025-Q1").rho
    assert WINDOW_RELEASES == {"month": 12, "quarter": 5}
    assert 12 * month + 5 * quarter == pytest.approx(DEFAULT_POLICY.cap.value, rel=1e-12)
    reserved = apply_policy_updates(DEFAULT_POLICY, {"reserve_share": 0.2})
    assert 12 * release_cost(reserved, "2025-03").rho + 5 * release_cost(reserved, "2025-Q1").rho == pytest.approx(
        0.8 * DEFAULT_POLICY.cap.value
    )


def test_legacy_keys_of_an_older_control_store_are_translated_never_to_a_larger_budget():
    old = apply_policy_updates(
        DEFAULT_POLICY,
        {"rho_cap_12m": "0.5", "rho_per_release": "0.05", "weights.engaged": "0.3", "k": "12"},
        legacy=True,
    )
    assert old.k == 12
    assert old.epsilon_annual == pytest.approx(implied_epsilon(0.5, 1e-6))
    assert old.cap.value == pytest.approx(0.5)
    huge = apply_policy_updates(DEFAULT_POLICY, {"rho_cap_12m": "1e12"}, legacy=True)
    assert huge.epsilon_annual == 20.0  # clamped to the bound
    assert math.isfinite(huge.cap.value)
