"""Ingest benchmark (issue 2): 10 million synthetic events into the encrypted raw store.

Prints figures; never part of the test suite's pass/fail. Steps, each in its own
child process (wall time and peak RSS of that process, see ``_measure.py``):

1. generate the export once as Parquet and once as CSV (same seed: same rows)
   with 20 customers x 24 months and the calibrated employees per customer;
2. (a) ``pipeline.ingest.ingest_files(settings, [parquet])`` into a fresh encrypted store;
3. (b) the same from CSV;
4. (c) baseline: plain DuckDB ``CREATE TABLE t AS SELECT * FROM read_parquet(...)``
   into a fresh *encrypted* database (httpfs loaded, ``ATTACH ... (ENCRYPTION_KEY $key)``).

Targets: each ingest <= 60 s, peak RSS <= 3 GB, and <= 3x the baseline.

Usage::

    .venv/bin/python benchmarks/bench_ingest.py                 # 10M events
    .venv/bin/python benchmarks/bench_ingest.py --events 1000000
    .venv/bin/python benchmarks/bench_ingest.py --keep          # keep (and reuse) the generated files
    .venv/bin/python benchmarks/bench_ingest.py --baseline-only # generator + baseline only
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

from _measure import REPO_ROOT, ChildFailed, Measurement, load_summary, machine_summary, print_table, run_call, verdict

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

FULL_EVENTS = 10_000_000
CUSTOMERS = 20
MONTHS = 24
# Calibrated: --customers 20 --months 24 --employees 441000 gives ~10.0M events (10,016,986 with seed 7).
EMPLOYEES_FOR_10M = 441_000
SEED = 7
TARGET_SECONDS = 60.0
TARGET_RSS_GB = 3.0
TARGET_RATIO = 3.0
BENCH_KEY = "bench-only-raw-key-0123456789abcdef"  # throwaway stores, deleted after each step
BENCH_PSEUDONYM_KEY = "bench-only-pseudonym-key-fedcba9876543210"


# ------------------------------------------------------------------ child targets
def child_generate(out_dir: str, employees: int, fmt: str, start: str) -> dict[str, object]:
    from pipeline.synthetic import generate

    result = generate(
        Path(out_dir), customers=CUSTOMERS, employees=employees, months=MONTHS, seed=SEED, fmt=fmt, start=start
    )
    return {"events": [str(p) for p in result.events], "headcounts": [str(p) for p in result.headcounts],
            "n_events": result.n_events}  # fmt: skip


def child_ingest(home: str, paths: list[str], headcounts: list[str] | None = None) -> dict[str, object]:
    import time

    from pipeline.ingest import ingest_files
    from pipeline.settings import Settings

    settings = Settings.from_env(home)
    t0 = time.perf_counter()
    if headcounts:  # the customers' public structure first: it creates their shards (events are checked against it)
        _, refused = ingest_files(settings, [Path(p) for p in headcounts])
        if refused:
            raise RuntimeError("; ".join(str(r) for r in refused))
    headcount_s = time.perf_counter() - t0
    reports, refused = ingest_files(settings, [Path(p) for p in paths])
    if refused:
        raise RuntimeError("; ".join(str(r) for r in refused))
    return {
        "rows_total": sum(r.rows_total for r in reports),
        "accepted": sum(r.accepted for r in reports),
        "quarantined": sum(r.quarantined for r in reports),
        "headcount_s": headcount_s,
        # encrypted shards + catalog after the ingest (info)
        "store_mb": sum(p.stat().st_size for p in settings.shards_dir.glob("*.duckdb")) / 1e6,
    }


def child_baseline(db_path: str, source: str) -> dict[str, object]:
    import duckdb

    from pipeline.raw_store import load_httpfs

    con = duckdb.connect(config={"threads": "2"})  # same settings as pipeline.raw_store.open_encrypted
    try:
        load_httpfs(con)
        quoted = db_path.replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS bench (ENCRYPTION_KEY $key)", {"key": BENCH_KEY})
        con.execute("USE bench")
        reader = "read_parquet" if source.endswith(".parquet") else "read_csv"
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}($p)", {"p": source})
        rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
        encrypted = con.execute("SELECT encrypted FROM duckdb_databases() WHERE database_name = 'bench'").fetchone()[0]
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"rows": rows, "encrypted": bool(encrypted)}


# ------------------------------------------------------------------ driver
def _start_month() -> str:
    """The 24 months that end last month: ingest quarantines events dated in the future."""
    today = date.today()
    index = today.year * 12 + today.month - 1 - MONTHS  # month index of (this month - 24)
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _employees_for(events: int) -> int:
    return max(10, round(EMPLOYEES_FOR_10M * events / FULL_EVENTS))


def _prepare(data_dir: Path, employees: int, keep: bool) -> tuple[Path, Path, int, list[Measurement]]:
    """Generate (or, with --keep, reuse) the Parquet and CSV exports of the same data."""
    manifest = data_dir / "manifest.json"
    start = _start_month()
    wanted = {"customers": CUSTOMERS, "months": MONTHS, "employees": employees, "seed": SEED, "start": start}
    parquet, csv = data_dir / "parquet" / "provider-export.parquet", data_dir / "csv" / "provider-export.csv"
    if keep and manifest.exists() and parquet.exists() and csv.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("args") == wanted:
            print(f"reusing generated data in {data_dir} ({saved['n_events']:,} events)")
            return parquet, csv, int(saved["n_events"]), []
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    measured = []
    n_events = 0
    for fmt in ("parquet", "csv"):
        m = run_call("bench_ingest:child_generate", str(data_dir / fmt), employees, fmt, start, label=f"generate {fmt}")
        measured.append(m)
        n_events = int(m.result["n_events"])
    manifest.write_text(json.dumps({"args": wanted, "n_events": n_events}))
    return parquet, csv, n_events, measured


def _ingest(label: str, path: Path, work: Path) -> Measurement:
    home = work / f"home-{path.suffix.lstrip('.')}"
    shutil.rmtree(home, ignore_errors=True)
    env = {"WELLBEING_RAW_KEY": BENCH_KEY, "WELLBEING_PSEUDONYM_KEY": BENCH_PSEUDONYM_KEY}
    try:
        headcounts = sorted(str(p) for p in path.parent.glob("headcount-*"))
        return run_call("bench_ingest:child_ingest", str(home), [str(path)], headcounts, label=label, env=env)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _baseline(source: Path, work: Path, when: str) -> Measurement:
    db = work / "baseline.duckdb"
    kind = source.suffix.lstrip(".")
    for leftover in (db, db.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    try:
        return run_call(
            "bench_ingest:child_baseline", str(db), str(source), label=f"baseline CTAS {kind}, encrypted ({when})"
        )
    finally:
        for leftover in (db, db.with_suffix(".duckdb.wal")):
            leftover.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--events", type=int, help=f"approximate number of events (default {FULL_EVENTS:,})")
    size.add_argument("--scale", type=float, help="fraction of 10M events, e.g. 0.1")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "wellbeing-bench-ingest",
        help="work folder for generated data and throwaway stores (default: %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files and reuse them next time")
    parser.add_argument("--baseline-only", action="store_true", help="skip pipeline.ingest (generator + baseline)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    events = args.events or round(FULL_EVENTS * (args.scale if args.scale else 1.0))
    employees = _employees_for(events)
    work = args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"ingest benchmark · {machine_summary()}")
    print(
        f"data: {CUSTOMERS} customers x {MONTHS} months from {_start_month()} x {employees:,} employees/customer "
        f"(seed {SEED}) in {work}"
    )

    try:
        parquet, csv, n_events, gen = _prepare(work / "data", employees, args.keep)
        # The baseline runs before and after the ingests; the ratio uses their mean, so a
        # change in background load during the run does not favour either side.
        baselines = [_baseline(parquet, work, "before")]
        ingests: list[Measurement] = []
        csv_baseline: Measurement | None = None
        if not args.baseline_only:
            ingests = [_ingest("ingest parquet", parquet, work), _ingest("ingest csv", csv, work)]
            baselines.append(_baseline(parquet, work, "after"))
            # The same statement over the CSV itself: the like-for-like reference of the CSV ingest.
            csv_baseline = _baseline(csv, work, "same file as the CSV ingest")
    except ChildFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work / "data", ignore_errors=True)
    for b in [*baselines, *([csv_baseline] if csv_baseline is not None else [])]:
        assert b.result["rows"] == n_events and b.result["encrypted"], b.result
    baseline_s = sum(b.wall_s for b in baselines) / len(baselines)

    def row(m: Measurement, targets: str) -> list[object]:
        return [m.label, f"{m.wall_s:.1f}", f"{m.cpu_s:.1f}", f"{m.peak_rss_gb:.2f}", targets]

    rows = [row(m, "(info)") for m in gen]
    all_ok = True
    for m in ingests:
        ok_t, ok_m = m.wall_s <= TARGET_SECONDS, m.peak_rss_gb <= TARGET_RSS_GB
        ratio = m.wall_s / baseline_s
        ok_r = ratio <= TARGET_RATIO
        accepted = m.result["accepted"]
        ok_rows = accepted == n_events
        all_ok &= ok_t and ok_m and ok_r and ok_rows
        rows.append(
            row(
                m,
                f"<= {TARGET_SECONDS:.0f} s {verdict(ok_t)} · <= {TARGET_RSS_GB:.0f} GB {verdict(ok_m)} · "
                f"{ratio:.2f}x baseline <= {TARGET_RATIO:.0f}x {verdict(ok_r)} · "
                + (
                    f"{m.wall_s / csv_baseline.wall_s:.2f}x the CSV CTAS of the same file · "
                    if csv_baseline is not None and m.label.endswith("csv")
                    else ""
                )
                + f"{accepted:,} rows stored {verdict(ok_rows)} · shards {m.result['store_mb']:.0f} MB · "
                + f"incl. {m.result['headcount_s']:.1f} s for the headcount files (shards created)",
            )
        )
    rows.extend(row(b, "(reference)") for b in baselines)
    if csv_baseline is not None:
        rows.append(row(csv_baseline, "(reference for the CSV ingest; not in the baseline mean)"))
    print(f"events: {n_events:,}")
    print_table(["step", "wall s", "cpu s", "peak RSS GB", "targets"], rows)
    print(f"baseline mean: {baseline_s:.1f} s")
    print(f"after the run: {load_summary()} (figures are only trustworthy on an otherwise idle machine)")
    return 1 if (args.strict and not all_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
