"""The non-private baselines of the release benchmarks: plain DuckDB SQL, no noise, no thresholds.

* :func:`exact_cells` (the target's baseline) computes the exact values of *the same
  figures* a release publishes, for the same cells: engaged employees, contacts (bounded per
  employee), uptake against the public headcount, the WHO-5 mean, low-wellbeing and improved
  shares and the satisfaction mean over employees with a score, per public group of every
  breakdown (the headcount's groups after roll-up, each employee in their home group; empty
  groups as zeros), and engaged employees per service and topic (plus the exact counts of people
  with scores, the size classes of the accuracy benchmark). It uses the release's own per-employee definitions (``privacy.reduce``'s SQL) and public
  structure, then plain GROUP BYs; ``tests/privacy/test_baseline_sql.py`` checks that its values
  equal a release's at negligible noise. One scan of the customer-period's events feeds both
  parts. To reproduce the published numbers it keeps the release's definitions, including the
  ones that exist for differential privacy (at most 2 services and 2 topics per employee,
  contacts capped per employee, scores clamped to their ranges), steps a report without privacy
  would not need. Used by bench_release.py and bench_dp_core.py.
* :data:`PLAIN_SQL` (for information) is the simplest look-alike: plain GROUP BYs over the raw
  events (raw departments, an employee counted in every group they touched, unbounded contacts,
  means over contacts, no uptake). Cheaper, but not the same aggregates.
"""

from __future__ import annotations

import duckdb
import polars as pl

from privacy.periods import parse_period
from privacy.policy import ReleasePolicy
from privacy.reduce import REDUCTION_CTES, SAT_MID, SAT_SCALE, WHO5_MID, Bounds, people_params, usage_params
from privacy.structure import load_structure

PLAIN_SQL = """
WITH e AS (
    SELECT * FROM events WHERE customer_id = $c AND occurred_on >= $start AND occurred_on < $end
)
SELECT 'total' AS dimension, 'all' AS group_value, count(DISTINCT employee) AS engaged, count(*) AS contacts,
       avg(who5_raw) * 4 AS who5_mean, avg(satisfaction) AS satisfaction_mean FROM e
UNION ALL SELECT 'department', department, count(DISTINCT employee), count(*), avg(who5_raw) * 4, avg(satisfaction)
    FROM e GROUP BY department
UNION ALL SELECT 'site', site, count(DISTINCT employee), count(*), avg(who5_raw) * 4, avg(satisfaction)
    FROM e GROUP BY site
UNION ALL SELECT 'role', role, count(DISTINCT employee), count(*), avg(who5_raw) * 4, avg(satisfaction)
    FROM e GROUP BY role
UNION ALL SELECT 'service', service, count(DISTINCT employee), NULL, NULL, NULL FROM e GROUP BY service
UNION ALL SELECT 'topic', topic, count(DISTINCT employee), NULL, NULL, NULL FROM e WHERE topic IS NOT NULL GROUP BY topic
"""

EXACT_SQL = f"""
WITH {REDUCTION_CTES},
public_groups AS (
    SELECT unnest($hc_dimension) AS dimension, unnest($hc_group_value) AS group_value, unnest($hc_headcount) AS headcount
    UNION ALL SELECT 'service', unnest($services), NULL
    UNION ALL SELECT 'topic', unnest($topics), NULL
),
people_long AS (
    SELECT 'total' AS dimension, 'all' AS group_value, * EXCLUDE (department, site, role) FROM people
    UNION ALL SELECT 'department', department, * EXCLUDE (department, site, role) FROM people WHERE department IS NOT NULL
    UNION ALL SELECT 'site', site, * EXCLUDE (department, site, role) FROM people WHERE site IS NOT NULL
    UNION ALL SELECT 'role', role, * EXCLUDE (department, site, role) FROM people WHERE role IS NOT NULL
),
people_cells AS (
    SELECT dimension, group_value, count(*) AS engaged, sum(contacts) AS contacts,
           sum(has_who5) AS who5_n, sum(who5_c) AS who5_csum, sum(low_pm) AS low_diff,
           sum(has_chg) AS chg_n, sum(imp_pm) AS improved_diff, sum(has_sat) AS sat_n, sum(sat_c) AS sat_csum
    FROM people_long GROUP BY ALL
),
usage_cells AS (
    SELECT dimension, group_value, count(*) AS engaged FROM usage GROUP BY ALL
)
SELECT g.dimension, g.group_value,
       coalesce(p.engaged, u.engaged, 0) AS engaged_employees,
       coalesce(p.contacts, 0) AS contacts,
       coalesce(p.engaged, 0) / g.headcount AS uptake_rate,
       {WHO5_MID} + p.who5_csum / nullif(p.who5_n, 0) AS who5_mean,
       0.5 + p.low_diff / nullif(2 * p.who5_n, 0) AS wellbeing_low_share,
       0.5 + p.improved_diff / nullif(2 * p.chg_n, 0) AS wellbeing_improved_share,
       {SAT_MID / SAT_SCALE} + p.sat_csum / {SAT_SCALE} / nullif(p.sat_n, 0) AS satisfaction_mean,
       coalesce(p.who5_n, 0) AS who5_n, coalesce(p.chg_n, 0) AS chg_n, coalesce(p.sat_n, 0) AS sat_n
FROM public_groups g
LEFT JOIN people_cells p USING (dimension, group_value)
LEFT JOIN usage_cells u USING (dimension, group_value)
"""


def exact_cells(con: duckdb.DuckDBPyConnection, customer_id: str, period: str, policy: ReleasePolicy) -> pl.DataFrame:
    """The exact values of one release's cells (dimension, group_value, one column per metric)."""
    p = parse_period(period)
    tables = policy.tables_for(p.granularity)
    structure = load_structure(con, customer_id, p.label, policy.k)
    bounds = Bounds.for_period(policy, p)
    hc = structure.public_headcount
    params = {
        **people_params(customer_id, p, bounds, structure.key_map),
        **usage_params(customer_id, p, bounds, with_services="services" in tables, with_topics="topics" in tables),
        "hc_dimension": hc["dimension"].to_list(),
        "hc_group_value": hc["group_value"].to_list(),
        "hc_headcount": hc["headcount"].to_list(),
    }  # $services and $topics (the contract lists) come with usage_params
    return con.execute(EXACT_SQL, params).pl()
