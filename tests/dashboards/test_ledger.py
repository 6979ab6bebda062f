"""The dashboards' vectorised window sums agree with privacy.periods (the ledger's own rule)."""

from __future__ import annotations

import polars as pl

from dashboards.ledger import current_window, window_spend
from privacy.periods import in_window


def test_window_spend_matches_in_window() -> None:
    periods = ["2024-01", "2024-05", "2024-Q3", "2024-12", "2025-01", "2025-03", "2025-Q2", "2025-11"]
    rhos = [0.25, 0.1, 0.3, 0.25, 0.2, 0.25, 0.05, 0.4]
    ledger = pl.DataFrame({"customer_id": ["c"] * len(periods), "period": periods, "rho": rhos})
    got = dict(zip(*window_spend(ledger).select("period", "window_rho").to_dict(as_series=False).values()))
    for end in periods:
        expected = sum(r for p, r in zip(periods, rhos) if in_window(p, end))
        assert abs(got[end] - expected) < 1e-12, end
    latest = current_window(ledger).row(0, named=True)
    assert latest["latest_period"] == "2025-11"
    assert latest["releases"] == len(periods)
