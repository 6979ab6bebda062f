"""DP core benchmark: ``privacy.release`` against the plain, non-private SQL of the same aggregates.

Prints figures; never part of the test suite. Everything runs in one process on an in-memory
DuckDB with the raw store's schema, filled by ``tests/privacy/privacy_synth.py`` (one customer
≈ 20,000 employees, ≈ 20,000 events and ≈ 3,000 engaged employees per month), so the events
table has the size of a real multi-customer store and both sides pay the same scan.

1. one customer-month: ``draw_release`` (best / median of ``--repeat``) and the phases inside
   it (structure, reduction, OpenDP, thresholds), vs the plain SQL, best / median, interleaved;
2. a batch: one month of every customer — ``draw_release`` per customer and, when the library
   has it, ``draw_releases`` (one OpenDP measurement per period), vs the plain SQL per customer;
3. ``--all``: every customer-month with ``draw_releases`` (the life cycle's run_all_due path).

Usage::

    .venv/bin/python benchmarks/bench_dp_core.py                        # 20 customers x 6 months (≈ 2.4M events)
    .venv/bin/python benchmarks/bench_dp_core.py --months 24 --all      # ≈ 9.6M events, all 480 releases
    PYTHONPATH=/path/to/other/tree .venv/bin/python benchmarks/bench_dp_core.py   # another version of privacy/

The baselines are those of ``benchmarks/bench_release.py`` (c): the exact SQL of the same
cells (``_baseline_sql.exact_cells``, the target's baseline) and, for information, the simplest
GROUP BY look-alike over raw groups (``_baseline_sql.PLAIN_SQL``), for the same customer-month.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# appended, so a PYTHONPATH pointing at another tree (e.g. the previous version) takes precedence
sys.path.append(str(REPO_ROOT))
sys.path.append(str(REPO_ROOT / "tests" / "privacy"))

from _baseline_sql import PLAIN_SQL, exact_cells  # noqa: E402  (after the sys.path set-up)


def _period(m: int) -> tuple[str, date, date]:
    y, mo = 2024 + m // 12, m % 12 + 1
    start = date(y, mo, 1)
    end = date(y + (mo == 12), mo % 12 + 1, 1)
    return f"{y}-{mo:02d}", start, end


def _plain(con, customer: str, start: date, end: date) -> float:
    t = time.perf_counter()
    con.execute(PLAIN_SQL, {"c": customer, "start": start, "end": end}).fetchall()
    return time.perf_counter() - t


def _ms(xs: list[float]) -> str:
    return f"{min(xs) * 1000:7.1f} / {statistics.median(xs) * 1000:7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=20)
    ap.add_argument("--months", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--all", action="store_true", help="also draw every customer-month (batched per period)")
    args = ap.parse_args()

    from privacy_synth import events_for_month, insert_events, insert_headcount, org, raw_connection

    import privacy.release as release_mod
    from privacy.budget import release_cost
    from privacy.measure import _dp, measure, plan_queries
    from privacy.periods import parse_period
    from privacy.policy import DEFAULT_POLICY as P
    from privacy.reduce import Bounds, reduce_period
    from privacy.structure import load_structure
    from privacy.suppression import apply_thresholds

    print(f"privacy/ from {Path(release_mod.__file__).resolve().parent}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    con = raw_connection()
    t = time.perf_counter()
    n_events = 0
    customers = [f"c{c:02d}" for c in range(args.customers)]
    for c, cust in enumerate(customers):
        hc = org(seed=c)
        insert_headcount(con, cust, hc)
        for m in range(args.months):
            ev = events_for_month(cust, hc, *map(int, _period(m)[0].split("-")), seed=c * 100 + m)
            insert_events(con, ev)
            n_events += ev.height
    print(
        f"events table: {n_events:,} events ({args.customers} customers x {args.months} months), built in "
        f"{time.perf_counter() - t:.0f} s"
    )

    t = time.perf_counter()
    _dp()
    print(f"import opendp: {time.perf_counter() - t:.2f} s (once per process, not counted below)")
    label, start, end = _period(0)
    for _ in range(2):  # warm-up: lazy initialisation in OpenDP, DuckDB and polars
        release_mod.draw_release(con, customers[0], label, P)
        _plain(con, customers[0], start, end)

    # 1. one customer-month, DP and the baselines interleaved so that background load hits all alike
    dp_t, exact_t, plain_t = [], [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        release_mod.draw_release(con, customers[0], label, P)
        dp_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        exact_cells(con, customers[0], label, P)
        exact_t.append(time.perf_counter() - t)
        plain_t.append(_plain(con, customers[0], start, end))
    print(f"\n1. one customer-month ({customers[0]} {label}), best / median of {args.repeat}:")
    print(f"   DP draw_release     {_ms(dp_t)}")
    print(f"   exact SQL           {_ms(exact_t)}   (the same aggregates and cells, no noise: the target's baseline)")
    print(f"   look-alike SQL      {_ms(plain_t)}   (raw groups, not the same aggregates: info)")
    print(
        f"   ratio DP / exact    {min(dp_t) / min(exact_t):.1f}x (best)  {statistics.median(dp_t) / statistics.median(exact_t):.1f}x (median)   target <= 5x"
    )
    print(f"   ratio DP / look-alike {statistics.median(dp_t) / statistics.median(plain_t):.1f}x (median, info)")

    p = parse_period(label)
    cost = release_cost(P, label)
    tables = P.tables_for(p.granularity)
    phases: dict[str, list[float]] = {
        "structure": [],
        "reduction (DuckDB)": [],
        "OpenDP measurement": [],
        "thresholds (DuckDB)": [],
    }
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        s = load_structure(con, customers[0], label, P.k)
        t1 = time.perf_counter()
        bounds = Bounds.for_period(P, p)
        frame = reduce_period(con, customers[0], p, bounds, s.key_map)
        t2 = time.perf_counter()
        specs = plan_queries(P, tables, bounds, s.people_keys(), cost.rho)
        m = measure(frame, specs, P, cost.rho)
        t3 = time.perf_counter()
        apply_thresholds(
            m.noisy, s.public_headcount, customer_id=customers[0], period=label, k=P.k, k_scores=P.k_scores, z=P.z
        )
        t4 = time.perf_counter()
        for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            phases[k].append(v)
    print(f"   phases ({frame.people.height:,} people + {frame.usage.height:,} usage rows):")
    for k, v in phases.items():
        print(f"     {k:22s}{_ms(v)}")

    # 2. a batch: one month of every customer
    single = 0.0
    plain_sum = 0.0
    for cust in customers:
        t = time.perf_counter()
        release_mod.draw_release(con, cust, label, P)
        single += time.perf_counter() - t
        t = time.perf_counter()
        exact_cells(con, cust, label, P)
        plain_sum += time.perf_counter() - t
    print(f"\n2. batch: {len(customers)} customers x 1 month ({label})")
    print(f"   exact SQL, per customer   {plain_sum:6.2f} s  ({plain_sum / len(customers) * 1000:.1f} ms each)")
    print(
        f"   draw_release per customer {single:6.2f} s  ({single / len(customers) * 1000:.1f} ms each)  "
        f"ratio {single / plain_sum:.1f}x"
    )
    batched = getattr(release_mod, "draw_releases", None)
    if batched is not None:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            out = batched(con, [(cust, label) for cust in customers], P)
            best = min(best, time.perf_counter() - t)
        assert len(out) == len(customers)
        print(
            f"   draw_releases (batched)   {best:6.2f} s  ({best / len(customers) * 1000:.1f} ms each)  "
            f"ratio {best / plain_sum:.1f}x  (best of 3)"
        )

    # 3. every customer-month
    if args.all:
        requests = [(cust, _period(m)[0]) for m in range(args.months) for cust in customers]
        t = time.perf_counter()
        if batched is not None:
            batched(con, requests, P)
        else:
            for cust, period in requests:
                release_mod.draw_release(con, cust, period, P)
        total = time.perf_counter() - t
        t = time.perf_counter()
        for m in range(args.months):
            for cust in customers:
                exact_cells(con, cust, _period(m)[0], P)
        plain_all = time.perf_counter() - t
        print(
            f"\n3. all {len(requests)} customer-months: DP {total:.1f} s, exact SQL {plain_all:.1f} s, "
            f"ratio {total / plain_all:.1f}x   (480 releases extrapolate to {total / len(requests) * 480:.0f} s; target <= 120 s)"
        )
    print(
        f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
        f"load average {os.getloadavg()[0]:.1f} at end"
    )


if __name__ == "__main__":
    main()
