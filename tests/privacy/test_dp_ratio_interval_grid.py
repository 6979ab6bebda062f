"""The coarse-to-fine scan of the selective ratio interval gives exactly the full scan's interval.

``selective_ratio_interval`` looks at every 8th θ first and then at every θ next to the first and
last kept one; the reference scans all 241. They must agree on every selected observation, over
a wide sample of sizes, noise scales, gates, width limits and true ratios (near the selection
boundary, where the two could differ).
"""

from __future__ import annotations

import numpy as np
import pytest

from privacy.intervals import fieller_offset_interval, selective_ratio_interval, z_value


def _selective_ratio_interval_full(
    s: float,
    s_sd: float,
    n: float,
    n_sd: float,
    alpha: float,
    half_range: float,
    gate: float,
    width_limit: float,
    *,
    grid: int = 241,
) -> tuple[float, float]:
    """The reference: every grid point scanned (the implementation before the coarse pass)."""
    z = z_value(alpha)

    def selected(sv: np.ndarray, nv: np.ndarray) -> np.ndarray:
        lo, hi = fieller_offset_interval(sv, s_sd, nv, n_sd, z, half_range)
        return (nv >= gate) & (hi - lo <= width_limit)

    box_s = s + np.array([-4.0, 0.0, 4.0])[:, None] * s_sd
    box_n = n + np.array([-4.0, 0.0, 4.0])[None, :] * n_sd
    if selected(np.broadcast_to(box_s, (3, 3)), np.broadcast_to(box_n, (3, 3))).all():
        lo, hi = fieller_offset_interval(np.array([s]), s_sd, np.array([n]), n_sd, z, half_range)
        return float(lo[0]), float(hi[0])
    theta = np.linspace(-half_range, half_range, grid)[:, None]
    q_sd = np.sqrt(s_sd**2 + theta**2 * n_sd**2)
    q_obs = s - theta * n
    c = theta * n_sd**2 / s_sd**2
    v = n + c * s
    u = np.linspace(-10.0, 10.0, 1601)[None, :]
    q = u * q_sd
    n_at = (v - c * q) / (1 + c * theta)
    mass = np.exp(-0.5 * u**2) * selected(q + theta * n_at, n_at)
    total = mass.sum(axis=1)
    below = (mass * (q <= q_obs)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf = below / total
    kept = np.flatnonzero((total > 0) & (cdf >= alpha / 2) & (cdf <= 1 - alpha / 2))
    if kept.size == 0:
        return -half_range, half_range
    step = 2 * half_range / (grid - 1)
    low = float(theta[kept[0], 0]) - step
    high = float(theta[kept[-1], 0]) + step
    return max(low, -half_range), min(high, half_range)


def _selected_observations(seed: int, count: int) -> list[tuple[float, ...]]:
    rng = np.random.default_rng(seed)
    out: list[tuple[float, ...]] = []
    while len(out) < count:
        half_range = float(rng.choice([0.5, 2.0, 50.0]))
        n_true = float(rng.uniform(2, 150))
        n_sd = float(rng.uniform(0.5, 25))
        s_sd = float(rng.uniform(0.2, 1.0)) * half_range * float(rng.uniform(0.5, 6))
        theta = float(rng.uniform(-1, 1)) * half_range
        alpha = float(rng.choice([0.05, 0.1]))
        gate = float(rng.uniform(0, 30))
        limit = float(rng.uniform(0.1, 1.2)) * half_range
        s = theta * n_true + rng.normal(0, s_sd)
        n = n_true + rng.normal(0, n_sd)
        lo, hi = fieller_offset_interval(np.array([s]), s_sd, np.array([n]), n_sd, z_value(alpha), half_range)
        if n >= gate and hi[0] - lo[0] <= limit:  # only selected observations get an interval
            out.append((s, s_sd, n, n_sd, alpha, half_range, gate, limit))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coarse_to_fine_scan_equals_the_full_scan(seed: int) -> None:
    cases = _selected_observations(seed, 150)
    on_the_grid = 0
    for case in cases:
        s, s_sd, n, n_sd, alpha, half_range = case[:6]
        plain = fieller_offset_interval(np.array([s]), s_sd, np.array([n]), n_sd, z_value(alpha), half_range)
        full = _selective_ratio_interval_full(*case)
        on_the_grid += full != (float(plain[0][0]), float(plain[1][0]))
        assert selective_ratio_interval(*case) == full, case
    assert on_the_grid >= 30  # not only the observations deep inside the selection (Fieller's own interval)
