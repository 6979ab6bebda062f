"""What is shown: thresholds on noisy values, in DuckDB SQL; long-format release cells.

Privacy reason: a threshold on a *true* count would make the pattern of hidden cells itself
leak (and void the DP guarantee). Here the SQL reads only the relation ``estimates`` (figures
computed from OpenDP's outputs by :mod:`privacy.estimates`: post-processing) and the public
headcount inside it. It never sees the reduced frame or the events.

Rules, per figure (``gate``: the noisy count the figure rests on; ``gate_threshold`` = k + z·sd,
or k_scores + z·sd for a mean or share, sd being that count's public noise sd):

* ``hidden`` — the gate is below its threshold: too few people to show the figure reliably. A
  group's ``contacts`` and ``uptake_rate`` follow its ``engaged_employees``; ``uptake_rate`` also
  needs a public headcount; a mean or share is also hidden when the same release hides its
  group's count (a mean is never shown beside a hidden count);
* ``too_uncertain`` — a mean or share whose 95 % interval is wider than the policy's
  ``max_interval_width`` for it (first its plain interval, then the selection-aware one that
  would be published): decided from noisy values and public scales, never a true count;
* ``published`` — otherwise.

A cell that is not published has ``value``, ``ci_low`` and ``ci_high`` NULL and a reason in
plain words; ``suppressed`` is true for both hidden and too uncertain. Values are the
estimates of :mod:`privacy.estimates`, already inside their interval and range.
"""

from __future__ import annotations

import threading

import duckdb
import polars as pl

from privacy.estimates import ESTIMATE_SCHEMA, METRICS

CELL_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "period": pl.String(),
    "dimension": pl.String(),
    "group_value": pl.String(),
    "metric": pl.String(),
    "value": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "suppressed": pl.Boolean(),
    "status": pl.String(),  # 'published' | 'hidden' | 'too_uncertain'
    "reason": pl.String(),
    # the figure's noise sd: a count's is public and data-independent; a mean's or share's is the
    # delta-method sd at its estimate (post-processing)
    "noise_sd": pl.Float64(),
}
CELL_COLUMNS: tuple[str, ...] = tuple(CELL_SCHEMA)
STATUSES: tuple[str, ...] = ("published", "hidden", "too_uncertain")
DIMENSION_ORDER: tuple[str, ...] = ("total", "department", "site", "role", "service", "topic")

SUPPRESSION_SQL = """
WITH counts AS (
    SELECT customer_id, dimension, group_value, gate >= gate_threshold AS count_shown
    FROM estimates WHERE metric = 'engaged_employees' AND dimension NOT IN ('service', 'topic')
),
d AS (
    SELECT e.*,
        CASE
            WHEN e.gate IS NULL OR e.gate < e.gate_threshold THEN 'hidden'
            WHEN e.metric = 'uptake_rate' AND coalesce(e.headcount, 0) <= 0 THEN 'hidden'
            WHEN e.width_limit IS NOT NULL AND NOT coalesce(c.count_shown, TRUE) THEN 'hidden'
            WHEN e.width_limit IS NOT NULL AND (e.screen_width > e.width_limit OR e.ci_high - e.ci_low > e.width_limit)
                THEN 'too_uncertain'
            ELSE 'published'
        END AS status,
        CASE
            WHEN e.gate IS NULL OR e.gate < e.gate_threshold THEN
                CASE WHEN e.width_limit IS NULL THEN $reason_few ELSE $reason_few_scores END
            WHEN e.metric = 'uptake_rate' AND coalesce(e.headcount, 0) <= 0 THEN $reason_headcount
            WHEN e.width_limit IS NOT NULL AND NOT coalesce(c.count_shown, TRUE) THEN $reason_count_hidden
            WHEN e.width_limit IS NOT NULL AND (e.screen_width > e.width_limit OR e.ci_high - e.ci_low > e.width_limit) THEN
                $reason_uncertain || CASE WHEN e.metric LIKE '%share' THEN round(e.width_limit * 100, 1)::VARCHAR || ' percentage points'
                                          ELSE round(e.width_limit, 2)::VARCHAR || ' points' END
        END AS reason
    FROM estimates e LEFT JOIN counts c USING (customer_id, dimension, group_value)
)
SELECT customer_id, $period AS period, dimension, group_value, metric,
       CASE WHEN status = 'published' THEN value END   AS value,
       CASE WHEN status = 'published' THEN ci_low END  AS ci_low,
       CASE WHEN status = 'published' THEN ci_high END AS ci_high,
       status <> 'published' AS suppressed, status, reason, noise_sd
FROM d
ORDER BY customer_id, list_position($dimensions, dimension), group_value, list_position($metrics, metric)
"""


_DB: duckdb.DuckDBPyConnection | None = None
_DB_LOCK = threading.Lock()


def _private_cursor() -> duckdb.DuckDBPyConnection:
    """A fresh connection to this module's own in-memory database (opened once per process).

    Opening a DuckDB database costs ~8 ms; a cursor is a new connection to the same database and
    costs microseconds. Registered frames are views local to that connection, so concurrent
    releases (threads) never see each other's outputs; the database holds no tables.
    """
    global _DB
    with _DB_LOCK:
        if _DB is None:
            _DB = duckdb.connect(":memory:")
        return _DB.cursor()


def apply_thresholds(estimates: pl.DataFrame, *, period: str, k: int, k_scores: int) -> pl.DataFrame:
    """Release cells (columns :data:`CELL_COLUMNS`) from the estimates of one or more customers.

    Every rule is evaluated per customer and cell (the SQL joins on ``customer_id``), so a
    customer's cells are exactly what it would get alone.
    """
    missing = set(ESTIMATE_SCHEMA) - set(estimates.columns)
    if missing:
        raise ValueError(f"estimates lack column(s) {sorted(missing)}")
    con = _private_cursor()  # private, in-memory: the caller's connection is never touched
    try:
        con.register("estimates", estimates.select(list(ESTIMATE_SCHEMA)))
        out = con.execute(
            SUPPRESSION_SQL,
            {
                "period": period,
                "dimensions": list(DIMENSION_ORDER),
                "metrics": [m.name for m in METRICS],
                "reason_few": f"too few people to show reliably (shown only when the group clearly has at least k = {k})",
                "reason_few_scores": (
                    f"too few people with a score to show reliably (shown only when clearly at least k = {k_scores})"
                ),
                "reason_headcount": "no public headcount for this group",
                "reason_count_hidden": "hidden because the number of people in this group is hidden",
                "reason_uncertain": "too uncertain to show: its 95 % interval would be wider than ",
            },
        ).pl()
    finally:
        con.close()
    return out.cast(CELL_SCHEMA).select(CELL_COLUMNS)  # type: ignore[arg-type]
