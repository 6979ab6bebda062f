"""``wellbeing generate``: write a synthetic provider export and headcount files (test data only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.errors import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write a synthetic provider export and one headcount file per customer",
        description=(
            "Write a realistic synthetic provider export (data contract v1) and one headcount CSV per "
            "customer into DIR. Same arguments give the same bytes. --dirty adds ~2 % bad rows (one per "
            "row-level rule) and a re-delivery file repeating ~10 % of the events."
        ),
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--customers", type=int, default=3, metavar="N", help="number of customers (default 3)")
    parser.add_argument(
        "--employees", type=int, default=1500, metavar="N", help="average employees per customer (default 1500)"
    )
    parser.add_argument("--months", type=int, default=12, metavar="N", help="number of months (default 12)")
    parser.add_argument("--seed", type=int, default=7, metavar="S", help="random seed (default 7)")
    parser.add_argument(
        "--start",
        default=None,
        metavar="YYYY-MM",
        help="first month (default: so that the last month is the last complete one, i.e. last month)",
    )
    parser.add_argument(
        "--format", dest="fmt", choices=("csv", "parquet", "jsonl"), default="csv", help="export format (default csv)"
    )
    parser.add_argument("--shards", type=int, default=1, metavar="N", help="split the export into N files (default 1)")
    parser.add_argument("--dirty", action="store_true", help="add documented bad rows and a duplicated delivery")
    parser.add_argument(
        "--shape", choices=("narrow", "wide"), default="narrow",
        help="organisation shape: narrow (default) or wide (log-normal sizes, 1-6 sites, 5-40 departments, "
        "6 roles, heavy-tailed contacts)",
    )  # fmt: skip
    parser.add_argument("--shuffle", action="store_true", help="write the export in random order (not by date)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.commands.demo import demo_start_month
    from pipeline.synthetic import generate

    if args.months < 1:
        raise CommandError(f"generate --months {args.months}: give at least 1 month")
    # Default: the history ends with the last complete month, so no event is in the future.
    args.start = args.start or demo_start_month(args.months)
    try:
        result = generate(
            args.out,
            customers=args.customers,
            employees=args.employees,
            months=args.months,
            seed=args.seed,
            dirty=args.dirty,
            fmt=args.fmt,
            start=args.start,
            shards=args.shards,
            shape=args.shape,
            shuffle=args.shuffle,
        )
    except ValueError as exc:
        raise CommandError(f"generate: {exc}") from None
    print(
        f"wrote {result.n_events} events for {len(result.customers)} customers "
        f"({', '.join(result.customers)}), {args.months} months from {args.start}, to {args.out}"
    )
    for path in result.events:
        print(f"  events     {path}")
    for path in result.headcounts:
        print(f"  headcount  {path}")
    if args.dirty:
        print(f"  dirty rows {result.dirty_rows} (plus a re-delivery file repeating ~10 % of events)")
    return 0
