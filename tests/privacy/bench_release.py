"""Timing of DP releases vs the plain (non-private) DuckDB SQL of the same aggregates.

Not a test (not collected). Run:  .venv/bin/python tests/privacy/bench_release.py [--customers 20 --months 24]
Prints: one customer-month (≈ 20k events) DP release time, plain SQL time, ratio, all releases, peak RSS.
The fuller benchmark (phases, batched ``draw_releases``, a multi-customer events table, the plain
SQL of ``benchmarks/bench_release.py``) is ``benchmarks/bench_dp_core.py``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from privacy_synth import events_for_month, insert_events, insert_headcount, org, raw_connection  # noqa: E402

PLAIN_SQL = """
WITH ev AS (SELECT * FROM events WHERE customer_id = $c AND occurred_on >= $s AND occurred_on < $e),
per AS (SELECT employee, any_value(department) AS department, any_value(site) AS site, any_value(role) AS role,
               count(*) AS contacts, arg_max(who5_raw, occurred_on) FILTER (WHERE who5_raw IS NOT NULL) AS who5,
               avg(satisfaction) AS sat
        FROM ev GROUP BY employee)
SELECT 'total' AS d, 'all' AS g, count(*), sum(contacts), avg(who5) * 4, avg(sat) FROM per
UNION ALL SELECT 'department', department, count(*), sum(contacts), avg(who5) * 4, avg(sat) FROM per GROUP BY ALL
UNION ALL SELECT 'site', site, count(*), sum(contacts), avg(who5) * 4, avg(sat) FROM per GROUP BY ALL
UNION ALL SELECT 'role', role, count(*), sum(contacts), avg(who5) * 4, avg(sat) FROM per GROUP BY ALL
UNION ALL SELECT 'service', service, count(DISTINCT employee), NULL, NULL, NULL FROM ev GROUP BY ALL
UNION ALL SELECT 'topic', topic, count(DISTINCT employee), NULL, NULL, NULL FROM ev GROUP BY ALL
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=2)
    ap.add_argument("--months", type=int, default=3)
    args = ap.parse_args()
    from datetime import date

    from privacy.policy import DEFAULT_POLICY
    from privacy.release import draw_release

    con = raw_connection()
    t = time.perf_counter()
    n_events = 0
    for c in range(args.customers):
        hc = org(seed=c)
        insert_headcount(con, f"c{c:02d}", hc)
        for m in range(args.months):
            ev = events_for_month(f"c{c:02d}", hc, 2024 + m // 12, m % 12 + 1, seed=c * 100 + m)
            insert_events(con, ev)
            n_events += ev.height
    print(f"built {n_events:,} events in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    import privacy.measure as measure

    measure._dp()
    print(f"import opendp: {time.perf_counter() - t:.2f} s (once per process)")

    one_dp, one_plain = [], []
    for _ in range(5):
        t = time.perf_counter()
        draw_release(con, "c00", "2024-01", DEFAULT_POLICY)
        one_dp.append(time.perf_counter() - t)
        t = time.perf_counter()
        con.execute(PLAIN_SQL, {"c": "c00", "s": date(2024, 1, 1), "e": date(2024, 2, 1)}).fetchall()
        one_plain.append(time.perf_counter() - t)
    dp_t, plain_t = min(one_dp), min(one_plain)
    print(f"one customer-month: DP release {dp_t:.3f} s (median {sorted(one_dp)[2]:.3f}), plain SQL {plain_t:.3f} s")

    t_all = time.perf_counter()
    plain_all = 0.0
    n = 0
    for c in range(args.customers):
        for m in range(args.months):
            period = f"{2024 + m // 12}-{m % 12 + 1:02d}"
            draw_release(con, f"c{c:02d}", period, DEFAULT_POLICY)
            n += 1
            s = date(2024 + m // 12, m % 12 + 1, 1)
            e = date(s.year + (s.month == 12), s.month % 12 + 1, 1)
            t = time.perf_counter()
            con.execute(PLAIN_SQL, {"c": f"c{c:02d}", "s": s, "e": e}).fetchall()
            plain_all += time.perf_counter() - t
    total = time.perf_counter() - t_all - plain_all
    print(f"all {n} releases: DP {total:.1f} s; plain SQL {plain_all:.1f} s; ratio {total / plain_all:.1f}x")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
