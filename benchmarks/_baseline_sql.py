"""The plain, non-private DuckDB SQL computing the same aggregates as one release (the speed baseline).

Exact counts, unbounded contacts and plain means over one customer-month: what a release would
cost without differential privacy. Used by bench_release.py and bench_dp_core.py.
"""

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
