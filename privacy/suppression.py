"""k-thresholds on the noisy outputs, in DuckDB SQL; long-format release cells.

Privacy reason: a threshold on a *true* count would make the pattern of suppression itself
leak (and void the DP guarantee). Here the SQL reads only the relation ``noisy`` (OpenDP's
outputs, their noise scale and accuracy: all post-processing of the measurement) and the
public headcount. It never sees the reduced frame or the events.

Rules (``k``, ``k_scores``, ``z`` from the policy; ``sd`` = standard deviation of the noise):

* a count cell (``engaged_employees``) is published iff noisy engaged ≥ k + z·sd;
  ``contacts`` and ``uptake_rate`` of the cell follow that decision (uptake also needs a
  public headcount > 0);
* a mean (``who5_mean``, ``satisfaction_mean``) is published iff its noisy count of scorers
  ≥ k_scores + z·sd and, when the release also measures engagement, the cell's engaged count
  is published (a mean is never shown beside a hidden count);
* a suppressed cell has value, ci_low and ci_high NULL and a reason.

Values are the unbiased noisy values (a count may be negative; no clamping in the store).
Intervals: counts and sums ± OpenDP's accuracy at ``alpha``; uptake = that interval divided by
the public headcount; a mean S/N gets the conservative ratio interval
[(S − a_S)/(N + a_N), (S + a_S)/(N − a_N)] from both accuracies at ``alpha/2`` (Bonferroni,
joint coverage ≥ 1 − alpha), clipped to the scale's range (upper end = range maximum when
N − a_N ≤ 0).
"""

from __future__ import annotations

import threading

import duckdb
import polars as pl

from privacy.contract import SATISFACTION_RANGE
from privacy.reduce import SAT_SCALE, WHO5_BOUND

CELL_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "period",
    "dimension",
    "group_value",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "suppressed",
    "reason",
)
CELL_SCHEMA = {
    "customer_id": pl.String,
    "period": pl.String,
    "dimension": pl.String,
    "group_value": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "suppressed": pl.Boolean,
    "reason": pl.String,
}
NOISY_COLUMNS: tuple[str, ...] = ("part", "dimension", "group_value", "aggregate", "value", "scale", "sd", "acc", "acc_half")

SUPPRESSION_SQL = """
WITH n AS (
    SELECT customer_id, dimension, group_value,
        max(value)    FILTER (WHERE aggregate = 'engaged')          AS engaged,
        max(sd)       FILTER (WHERE aggregate = 'engaged')          AS engaged_sd,
        max(acc)      FILTER (WHERE aggregate = 'engaged')          AS engaged_acc,
        max(value)    FILTER (WHERE aggregate = 'contacts')         AS contacts,
        max(acc)      FILTER (WHERE aggregate = 'contacts')         AS contacts_acc,
        max(value)    FILTER (WHERE aggregate = 'who5_sum')         AS who5_s,
        max(acc_half) FILTER (WHERE aggregate = 'who5_sum')         AS who5_s_acc,
        max(value)    FILTER (WHERE aggregate = 'who5_n')           AS who5_n,
        max(sd)       FILTER (WHERE aggregate = 'who5_n')           AS who5_n_sd,
        max(acc_half) FILTER (WHERE aggregate = 'who5_n')           AS who5_n_acc,
        max(value)    FILTER (WHERE aggregate = 'satisfaction_sum') / $sat_scale AS sat_s,
        max(acc_half) FILTER (WHERE aggregate = 'satisfaction_sum') / $sat_scale AS sat_s_acc,
        max(value)    FILTER (WHERE aggregate = 'satisfaction_n')   AS sat_n,
        max(sd)       FILTER (WHERE aggregate = 'satisfaction_n')   AS sat_n_sd,
        max(acc_half) FILTER (WHERE aggregate = 'satisfaction_n')   AS sat_n_acc
    FROM noisy
    GROUP BY customer_id, dimension, group_value
),
d AS (
    SELECT n.*, h.headcount,
        engaged >= $k + $z * engaged_sd        AS show_count,
        who5_n  >= $k_scores + $z * who5_n_sd AND coalesce(engaged >= $k + $z * engaged_sd, TRUE) AS show_who5,
        sat_n   >= $k_scores + $z * sat_n_sd  AND coalesce(engaged >= $k + $z * engaged_sd, TRUE) AS show_sat
    FROM n LEFT JOIN headcount h USING (customer_id, dimension, group_value)
),
cells AS (
    SELECT customer_id, dimension, group_value, 1 AS m, 'engaged_employees' AS metric, NOT show_count AS suppressed,
           engaged AS value, engaged - engaged_acc AS ci_low, engaged + engaged_acc AS ci_high, $reason_k AS why
    FROM d WHERE engaged IS NOT NULL
    UNION ALL
    SELECT customer_id, dimension, group_value, 2, 'contacts', NOT show_count,
           contacts, contacts - contacts_acc, contacts + contacts_acc, $reason_k
    FROM d WHERE contacts IS NOT NULL
    UNION ALL
    SELECT customer_id, dimension, group_value, 3, 'uptake_rate', NOT show_count OR coalesce(headcount, 0) <= 0,
           engaged / headcount, (engaged - engaged_acc) / headcount, (engaged + engaged_acc) / headcount,
           CASE WHEN show_count THEN $reason_headcount ELSE $reason_k END
    FROM d WHERE engaged IS NOT NULL AND dimension NOT IN ('service', 'topic')
    UNION ALL
    SELECT customer_id, dimension, group_value, 4, 'who5_mean', NOT show_who5,
           who5_s / who5_n,
           greatest(0.0, (who5_s - who5_s_acc) / (who5_n + who5_n_acc)),
           CASE WHEN who5_n - who5_n_acc > 0
                THEN least($who5_max, (who5_s + who5_s_acc) / (who5_n - who5_n_acc)) ELSE $who5_max END,
           CASE WHEN coalesce(show_count, TRUE) THEN $reason_scores ELSE $reason_k END
    FROM d WHERE who5_n IS NOT NULL
    UNION ALL
    SELECT customer_id, dimension, group_value, 5, 'satisfaction_mean', NOT show_sat,
           sat_s / sat_n,
           greatest($sat_min, (sat_s - sat_s_acc) / (sat_n + sat_n_acc)),
           CASE WHEN sat_n - sat_n_acc > 0
                THEN least($sat_max, (sat_s + sat_s_acc) / (sat_n - sat_n_acc)) ELSE $sat_max END,
           CASE WHEN coalesce(show_count, TRUE) THEN $reason_scores ELSE $reason_k END
    FROM d WHERE sat_n IS NOT NULL
)
SELECT customer_id, $period AS period, dimension, group_value, metric,
       CASE WHEN suppressed THEN NULL ELSE value END   AS value,
       CASE WHEN suppressed THEN NULL ELSE ci_low END  AS ci_low,
       CASE WHEN suppressed THEN NULL ELSE ci_high END AS ci_high,
       suppressed,
       CASE WHEN suppressed THEN why END AS reason
FROM cells
ORDER BY customer_id, list_position(['total', 'department', 'site', 'role', 'service', 'topic'], dimension), group_value, m
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


def apply_thresholds(
    noisy: pl.DataFrame,
    public_headcount: pl.DataFrame,
    *,
    customer_id: str,
    period: str,
    k: int,
    k_scores: int,
    z: float,
) -> pl.DataFrame:
    """Release cells (columns :data:`CELL_COLUMNS`) from noisy outputs and the public headcount only."""
    _check_noisy(noisy, NOISY_COLUMNS)
    return _thresholds(
        noisy.select(pl.lit(customer_id, pl.String).alias("customer_id"), *NOISY_COLUMNS),
        public_headcount.select(pl.lit(customer_id, pl.String).alias("customer_id"), "dimension", "group_value", "headcount"),
        period=period, k=k, k_scores=k_scores, z=z,
    )


def apply_thresholds_batch(
    noisy: pl.DataFrame, public_headcounts: pl.DataFrame, *, period: str, k: int, k_scores: int, z: float
) -> pl.DataFrame:
    """:func:`apply_thresholds` for several customers at once, in one statement.

    ``noisy`` has ``customer_id`` + :data:`NOISY_COLUMNS`; ``public_headcounts`` has
    ``customer_id, dimension, group_value, headcount``. Every rule is evaluated per customer
    and cell (the SQL groups and joins on ``customer_id``), so a customer's cells are exactly
    what :func:`apply_thresholds` would give for that customer alone.
    """
    _check_noisy(noisy, ("customer_id", *NOISY_COLUMNS))
    return _thresholds(
        noisy.select("customer_id", *NOISY_COLUMNS),
        public_headcounts.select("customer_id", "dimension", "group_value", "headcount"),
        period=period, k=k, k_scores=k_scores, z=z,
    )


def _check_noisy(noisy: pl.DataFrame, columns: tuple[str, ...]) -> None:
    missing = set(columns) - set(noisy.columns)
    extra = set(noisy.columns) - set(columns)
    if missing or extra:
        raise ValueError(f"noisy frame must have exactly {columns}; missing {sorted(missing)}, extra {sorted(extra)}")


def _thresholds(noisy: pl.DataFrame, headcount: pl.DataFrame, *, period: str, k: int, k_scores: int, z: float) -> pl.DataFrame:
    con = _private_cursor()  # private, in-memory: the caller's connection is never touched
    try:
        con.register("noisy", noisy)
        con.register("headcount", headcount)
        out = con.execute(
            SUPPRESSION_SQL,
            {
                "k": k,
                "k_scores": k_scores,
                "z": z,
                "period": period,
                "sat_scale": float(SAT_SCALE),
                "who5_max": float(WHO5_BOUND),
                "sat_min": float(SATISFACTION_RANGE[0]),
                "sat_max": float(SATISFACTION_RANGE[1]),
                "reason_k": f"fewer than k={k} people (noisy)",
                "reason_scores": f"fewer than k_scores={k_scores} people with a score (noisy)",
                "reason_headcount": "no public headcount for this group",
            },
        ).pl()
    finally:
        con.close()
    return out.cast(CELL_SCHEMA).select(CELL_COLUMNS)  # type: ignore[arg-type]
