"""Statistical check that the noise actually drawn matches the claimed ρ (many draws, fixed data)."""

from __future__ import annotations

import math

import polars as pl
import pytest
from privacy_synth import make_tiny

from privacy.budget import release_cost
from privacy.measure import measure, plan_queries
from privacy.periods import parse_period
from privacy.policy import DEFAULT_POLICY, apply_policy_updates
from privacy.reduce import Bounds, reduce_period
from privacy.structure import load_structure

DRAWS = 200


@pytest.mark.dp_statistical
def test_empirical_noise_variance_matches_the_claimed_rho():
    # engagement only (other tables quarterly) keeps each draw small: two aggregates, one query
    policy = apply_policy_updates(
        DEFAULT_POLICY,
        {"granularity.wellbeing": "quarter", "granularity.services": "quarter", "granularity.topics": "quarter"},
    )
    con = make_tiny()
    p = parse_period("2025-03")
    cost = release_cost(policy, "2025-03")
    s = load_structure(con, "tiny", "2025-03", policy.k)
    bounds = Bounds.for_period(policy, p)
    frame = reduce_period(con, "tiny", p, bounds, s.key_map, with_services=False, with_topics=False)
    specs = plan_queries(policy, ("engagement",), bounds, s.people_keys(), cost.rho)
    truth = frame.cells().group_by("dimension", "group_value").agg(pl.len().cast(pl.Float64).alias("engaged"),
                                                           pl.col("contacts").sum().cast(pl.Float64))
    truth = s.people_keys().join(truth, on=["dimension", "group_value"], how="left").fill_null(0.0)
    residuals: dict[str, list[float]] = {"engaged": [], "contacts": []}
    for _ in range(DRAWS):
        noisy = measure(frame, specs, policy, cost.rho).noisy
        joined = noisy.join(truth, on=["dimension", "group_value"])
        for agg in residuals:
            part = joined.filter(pl.col("aggregate") == agg)
            residuals[agg].extend((part["value"] - part[agg]).to_list())

    # claimed: ρ_release = 0.25 × (0.30 + 0.10), each aggregate's share split over the 4 breakdown
    # queries; one employee moves one cell per breakdown by ≤ 1 / ≤ 8 contacts
    assert cost.rho == pytest.approx(0.1)
    implied_rho = 0.0
    slack = 0.0
    for agg, bound, weight in (("engaged", 1, 0.30), ("contacts", policy.max_contacts_per_month, 0.10)):
        x = pl.Series(residuals[agg])
        n = x.len()
        sigma_claimed = bound * math.sqrt(1 / (2 * cost.rho * weight / 0.40 / 4))
        var = float((x**2).mean())  # the noise is centred on the true value
        # sampling error of a Gaussian variance estimate: sd(var) = σ² √(2/n); allow 4 sd
        tolerance = 4 * sigma_claimed**2 * math.sqrt(2 / n)
        assert abs(var - sigma_claimed**2) < tolerance, (agg, var, sigma_claimed**2)
        assert abs(float(x.mean())) < 4 * sigma_claimed / math.sqrt(n)  # unbiased (no clamping)
        # the loss the observed noise actually gives, with the true L2 sensitivity: one cell per
        # breakdown query, 4 queries (the accounting is exact, so this equals the claim up to sampling error)
        implied_rho += (4 * bound**2) / (2 * var)
        slack = max(slack, 4 * math.sqrt(2 / n))
    assert implied_rho <= cost.rho * (1 + slack), "the noise drawn is too small for the claimed ρ"
