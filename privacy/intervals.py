"""Interval maths for published figures: post-processing of noisy values and public scales only.

Privacy reason: everything here reads noisy outputs, their (public, data-independent) noise
standard deviations and public thresholds: never a true count. So it costs no budget.

* **Selection-aware intervals** (:func:`truncated_interval`). A count is published only when
  its noisy value x clears the threshold t = k + z·sd. For a small group that is the case
  mainly when its noise was large and positive, so the plain x ± 1.96·sd under-covers exactly
  the cells people look at. Conditional on publication, x follows N(θ, sd²) truncated to
  [t, ∞); inverting that conditional distribution (Lee, Sun, Sun & Taylor 2016) gives an
  interval with coverage 1 − α *given that the cell is shown*, for every true size θ:

      F_θ(x) = P(X ≤ x | X ≥ t) = 1 − S((x − θ)/sd) / S((t − θ)/sd)   (S: normal survival)

  is decreasing in θ; the interval is {θ : α/2 ≤ F_θ(x) ≤ 1 − α/2}. Far above the threshold
  it is the plain interval. The noise is the discrete Gaussian of OpenDP (after the consistency
  step, a sum of them): the normal law is its continuous approximation, accurate for sd ≥ 1.
* **Ratio intervals.** A mean or share is mid + S/N with a centred sum S and a count N measured
  with independent noise. Its plain interval is Fieller's (1954, :func:`fieller_offset_interval`):
  the ratios θ for which S − θN is within z·√(sd_S² + θ²·sd_N²) of 0 — exact for normal noise,
  unbounded (the whole scale) when N is not clearly above 0. A ratio is shown only if N clears
  its threshold *and* its plain interval is at most the policy's width: that selection depends
  on both noisy values, so the published interval (:func:`selective_ratio_interval`) inverts
  Fieller's pivot Q = Ŝ − θN̂ *conditional on the selection*: under θ, Q ~ N(0, sd_S² + θ²sd_N²)
  is independent of V = N̂ + c·Ŝ (c = θ·sd_N²/sd_S²), so given V the selection is a known set of
  Q values and the conditional law of Q is known without the nuisance N (the polyhedral
  argument of Lee et al. 2016, for a non-linear selection set). θ is kept when Q's observed
  value lies between the α/2 and 1 − α/2 conditional quantiles. Far inside the selection set
  this is Fieller's interval; near its edge it is honestly wider.
* **Projection** (:func:`project`): the one rule that keeps every published value inside its
  own interval and inside the metric's range: clip the value to the range, widen the interval to
  contain it (never move the estimate to the interval: a shown count stays above its threshold),
  then clip the interval to the range. Widening only raises coverage.
* **Differences** (:func:`difference_interval`): the change between two independent releases,
  by the method of variance estimates recovery (Zou & Donner 2008), which handles asymmetric
  intervals. A change is "reliable" when that interval excludes 0.

>>> import numpy as np
>>> lo, hi = truncated_interval(np.array([100.0]), np.array([5.0]), np.array([18.0]), 0.05)
>>> round(float(lo[0]), 1), round(float(hi[0]), 1)
(90.2, 109.8)
>>> lo, hi = truncated_interval(np.array([19.0]), np.array([5.0]), np.array([18.0]), 0.05)
>>> float(lo[0]) < 5.0 < 19.0 < float(hi[0]) < 28.8
True
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "z_value",
    "noise_quantile",
    "truncated_interval",
    "fieller_offset_interval",
    "selective_ratio_interval",
    "ratio_halfwidth",
    "project",
    "difference_interval",
]

_BISECT_STEPS = 64


def z_value(alpha: float) -> float:
    """The two-sided standard normal quantile z₁₋α/₂."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / 2)


def noise_quantile(alpha: float, *, laplace: bool = False) -> float:
    """c with P(|noise| > c·sd) = α: the normal z₁₋α/₂, or ln(1/α)/√2 for Laplace noise (pure DP).

    >>> round(noise_quantile(0.05), 3), round(noise_quantile(0.05, laplace=True), 3)
    (1.96, 2.118)
    """
    return math.log(1 / alpha) / math.sqrt(2.0) if laplace else z_value(alpha)


def _log_sf(x: np.ndarray, laplace: bool = False) -> np.ndarray:
    """log P(noise > x·sd) for normal or Laplace noise, in sd units (stable in the tails)."""
    if laplace:  # Laplace with scale b = sd / √2
        r = math.sqrt(2.0)
        return np.where(x >= 0, math.log(0.5) - r * x, np.log1p(-0.5 * np.exp(r * np.minimum(x, 0.0))))
    from scipy.special import log_ndtr

    return log_ndtr(-x)


def truncated_interval(
    x: np.ndarray,
    sd: np.ndarray,
    threshold: np.ndarray,
    alpha: float,
    *,
    floor: np.ndarray | float = -math.inf,
    laplace: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Level 1 − ``alpha`` interval for θ from x ~ N(θ, sd²) observed *given* x ≥ threshold.

    Vectorised over cells. Entries with x < threshold (not shown) or sd ≤ 0 get NaN. ``floor``
    bounds the search from below (the metric's range: a count's interval never needs to go
    below 0); a lower end that would lie below it is returned as ``floor``. ``laplace``: the
    noise is Laplace (pure DP) with that sd instead of normal.
    """
    x = np.asarray(x, dtype=float)
    sd = np.asarray(sd, dtype=float)
    t = np.broadcast_to(np.asarray(threshold, dtype=float), x.shape)
    ok = (x >= t) & (sd > 0) & np.isfinite(x)
    lo = np.full(x.shape, np.nan)
    hi = np.full(x.shape, np.nan)
    if not ok.any():
        return lo, hi
    xv, sv, tv = x[ok], sd[ok], t[ok]
    fl = np.broadcast_to(np.asarray(floor, dtype=float), x.shape)[ok]

    def log_r(theta: np.ndarray) -> np.ndarray:
        # log P(X > x | X ≥ t, θ): increasing in θ, → 0 as θ → ∞, → −∞ as θ → −∞ (x > t)
        return _log_sf((xv - theta) / sv, laplace) - _log_sf((tv - theta) / sv, laplace)

    def solve(target: float) -> np.ndarray:
        a = np.maximum(np.minimum(xv, tv) - 12.0 * sv, np.where(np.isfinite(fl), fl - sv, -np.inf))
        a = np.where(np.isfinite(a), a, np.minimum(xv, tv) - 12.0 * sv)
        b = xv + 12.0 * sv
        below = log_r(a) >= target  # even the bracket's low end is above the target: interval reaches it
        for _ in range(_BISECT_STEPS):
            mid = (a + b) / 2
            up = log_r(mid) < target
            a = np.where(up, mid, a)
            b = np.where(up, b, mid)
        root = (a + b) / 2
        return np.where(below, a, root)

    lo_v = solve(math.log(alpha / 2))
    hi_v = solve(math.log(1 - alpha / 2))
    lo_v = np.where(np.isfinite(fl), np.maximum(lo_v, fl), lo_v)
    lo[ok], hi[ok] = lo_v, hi_v
    return lo, hi


def fieller_offset_interval(
    s: np.ndarray, s_sd: np.ndarray | float, n: np.ndarray, n_sd: np.ndarray | float, z: float, half_range: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fieller's interval for θ = S/N from Ŝ ~ N(S, s_sd²), N̂ ~ N(N, n_sd²), clipped to [−half_range, half_range].

    The roots of (Ŝ − θN̂)² = z²(s_sd² + θ² n_sd²); where N̂² ≤ z²·n_sd² (the count is not clearly
    positive) the set is unbounded and the interval is the whole range.

    >>> lo, hi = fieller_offset_interval(np.array([0.0]), np.array([10.0]), np.array([100.0]), np.array([5.0]), 1.96, 50)
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (-0.197, 0.197)
    """
    s = np.asarray(s, dtype=float)
    n = np.asarray(n, dtype=float)
    a = n * n - z * z * n_sd * n_sd
    disc = z * z * (s * s * n_sd * n_sd + s_sd * s_sd * a)
    bounded = (a > 0) & (disc >= 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(np.where(bounded, disc, 0.0))
        low = np.where(bounded, (s * n - root) / np.where(bounded, a, 1.0), -half_range)
        high = np.where(bounded, (s * n + root) / np.where(bounded, a, 1.0), half_range)
    return np.clip(low, -half_range, half_range), np.clip(high, -half_range, half_range)


def ratio_halfwidth(n: float, n_sd: float, s_sd: float, z: float, half_range: float, offset: float = 0.0) -> float:
    """Expected half-width of a centred ratio whose true offset from the midpoint is ``offset``: planning, previews.

    Half of Fieller's interval at Ŝ = offset·N, clipped to the range (±z·s_sd / √(N² − z²·n_sd²)
    at the midpoint).

    >>> round(ratio_halfwidth(100.0, 5.0, 10.0, 1.96, 50.0), 3)
    0.197
    """
    if n * n - z * z * n_sd * n_sd <= 0:
        return half_range
    lo, hi = fieller_offset_interval(np.array([offset * n]), s_sd, np.array([n]), n_sd, z, half_range)
    return float(hi[0] - lo[0]) / 2


COARSE = 8  # the coarse pass of selective_ratio_interval looks at every COARSE-th θ


def selective_ratio_interval(
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
    """Interval for θ = S/N given that (Ŝ, N̂) = (s, n) passed the selection (see the module docstring).

    Selection: N̂ ≥ ``gate`` and the plain Fieller interval at level ``alpha`` is at most
    ``width_limit`` wide (both clipped to ±``half_range``). Returns the offset interval, clipped
    to ±``half_range``; it is Fieller's own when the observation lies deep inside the selection
    set (a ±4 sd box around it is selected). θ is scanned on ``grid`` points of the range; the
    result is widened by one grid step on each side, so grid rounding never narrows it.
    """
    z = z_value(alpha)

    def selected(sv: np.ndarray, nv: np.ndarray) -> np.ndarray:
        lo, hi = fieller_offset_interval(sv, s_sd, nv, n_sd, z, half_range)
        return (nv >= gate) & (hi - lo <= width_limit)

    box_s = s + np.array([-4.0, 0.0, 4.0])[:, None] * s_sd
    box_n = n + np.array([-4.0, 0.0, 4.0])[None, :] * n_sd
    if selected(np.broadcast_to(box_s, (3, 3)), np.broadcast_to(box_n, (3, 3))).all():
        lo, hi = fieller_offset_interval(np.array([s]), s_sd, np.array([n]), n_sd, z, half_range)
        return float(lo[0]), float(hi[0])
    thetas = np.linspace(-half_range, half_range, grid)
    u = np.linspace(-10.0, 10.0, 1601)[None, :]
    weight = np.exp(-0.5 * u**2)

    def kept(rows: np.ndarray) -> np.ndarray:
        """Whether each θ of ``rows`` (grid indices) is in the interval: its conditional cdf within (α/2, 1 − α/2)."""
        theta = thetas[rows][:, None]
        q_sd = np.sqrt(s_sd**2 + theta**2 * n_sd**2)
        q_obs = s - theta * n
        c = theta * n_sd**2 / s_sd**2
        v = n + c * s
        q = u * q_sd
        n_at = (v - c * q) / (1 + c * theta)
        mass = weight * selected(q + theta * n_at, n_at)
        total = mass.sum(axis=1)
        below = (mass * (q <= q_obs)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cdf = below / total
        return (total > 0) & (cdf >= alpha / 2) & (cdf <= 1 - alpha / 2)

    # Coarse to fine: the θ of every COARSE-th grid point first, then the full grid only next to the
    # first and last kept coarse point (same result as scanning every point, about five times faster;
    # tests/privacy/test_intervals.py compares the two on a wide sample of selected observations).
    coarse = np.arange(0, grid, COARSE)
    if coarse[-1] != grid - 1:
        coarse = np.append(coarse, grid - 1)
    hits = coarse[kept(coarse)]
    if hits.size == 0:
        inside = np.flatnonzero(kept(np.arange(grid)))
    else:
        before = np.arange(max(hits[0] - COARSE + 1, 0), hits[0])
        after = np.arange(hits[-1] + 1, min(hits[-1] + COARSE, grid))
        inside = np.concatenate([before[kept(before)], hits, after[kept(after)]]) if before.size or after.size else hits
    if inside.size == 0:
        return -half_range, half_range
    step = 2 * half_range / (grid - 1)
    low = float(thetas[inside.min()]) - step
    high = float(thetas[inside.max()]) + step
    return max(low, -half_range), min(high, half_range)


def project(
    value: np.ndarray, low: np.ndarray, high: np.ndarray, range_low: float, range_high: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The published (value, low, high): value clipped to the range, interval widened to hold it, then clipped.

    >>> [float(x[0]) for x in project(np.array([5.3]), np.array([4.1]), np.array([5.9]), 1.0, 5.0)]
    [5.0, 4.1, 5.0]
    >>> [float(x[0]) for x in project(np.array([18.2]), np.array([3.0]), np.array([18.1]), 0.0, np.inf)]
    [18.2, 3.0, 18.2]
    """
    v = np.clip(np.asarray(value, dtype=float), range_low, range_high)
    lo = np.clip(np.fmin(np.asarray(low, dtype=float), v), range_low, range_high)
    hi = np.clip(np.fmax(np.asarray(high, dtype=float), v), range_low, range_high)
    return v, lo, hi


def difference_interval(
    before: tuple[float, float, float], after: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Change ``after − before`` of two independent estimates (value, low, high) and its interval (MOVER).

    >>> d, lo, hi = difference_interval((50.0, 46.0, 54.0), (52.0, 48.0, 56.0))
    >>> round(d, 2), round(lo, 2), round(hi, 2)
    (2.0, -3.66, 7.66)
    """
    v1, l1, h1 = before
    v2, l2, h2 = after
    d = v2 - v1
    low = d - math.sqrt((v2 - l2) ** 2 + (h1 - v1) ** 2)
    high = d + math.sqrt((h2 - v2) ** 2 + (v1 - l1) ** 2)
    return d, low, high
