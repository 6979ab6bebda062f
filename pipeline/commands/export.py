"""``wellbeing export``: published cells of one customer as CSV, JSON or Parquet.

CSV has the dashboards' export layout (:mod:`stores.exports`: numeric value and interval columns,
a status, readable names) and cells that a spreadsheet would run as a formula are neutralised
(:mod:`stores.csv_safety`). JSON and Parquet keep the published cell columns for programs.
Reads ONLY the published store, through a short-lived read-only connection. Suppressed
cells are exported as markers (value, ci_low and ci_high empty, with the reason): the
published store never holds a suppressed value, so none can be exported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.errors import CommandError


def _export_columns() -> tuple[str, ...]:
    """The published cell (stores.published), then the release it belongs to. (Imported when exporting:
    the command line's start-up stays light for the other commands.)"""
    from stores.published import CELL_COLUMNS

    return (*CELL_COLUMNS, "release_id")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a customer's published release cells (csv, json or parquet)",
        description="Export published cells only (read-only access to published.duckdb).",
    )
    parser.add_argument("--customer", required=True, metavar="C")
    parser.add_argument("--period", metavar="P", help="YYYY-MM or YYYY-Qn (default: every published period)")
    parser.add_argument("--format", dest="fmt", choices=("csv", "json", "parquet"), required=True)
    parser.add_argument("--out", type=Path, metavar="FILE", help="output file (default: stdout; required for parquet)")
    parser.set_defaults(func=run)


def published_cells(published_path: Path, customer: str, period: str | None):
    """The published cells of a customer (and period) as a polars DataFrame."""
    import duckdb

    if not published_path.exists():
        raise CommandError(f"nothing published yet ({published_path} does not exist): run wellbeing release first")
    con = duckdb.connect(str(published_path), read_only=True)
    try:
        query = f"SELECT {', '.join(_export_columns())} FROM release_cells WHERE customer_id = ?"
        params: list[object] = [customer]
        if period:
            query += " AND period = ?"
            params.append(period)
        return con.execute(query + " ORDER BY period, dimension, group_value, metric", params).pl()
    finally:
        con.close()


def published_customers(published_path: Path) -> list[str]:
    """The customers with any published release (employers' ids)."""
    import duckdb

    con = duckdb.connect(str(published_path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT DISTINCT customer_id FROM releases ORDER BY 1").fetchall()]
    finally:
        con.close()


def run(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings
    from privacy.periods import PeriodError, parse_period

    if args.period:
        try:
            args.period = parse_period(args.period).label
        except PeriodError as exc:
            raise CommandError(str(exc)) from None
    if args.fmt == "parquet" and not args.out:
        raise CommandError("export --format parquet needs --out FILE")
    if args.out and not args.out.parent.is_dir():
        raise CommandError(f"export --out {args.out}: the folder {args.out.parent} does not exist")
    settings = Settings.from_env()
    frame = published_cells(settings.published_path, args.customer, args.period)
    if frame.is_empty():
        known = published_customers(settings.published_path)
        if args.customer not in known:
            raise CommandError(
                f"unknown customer {args.customer!r}: published customers: {', '.join(known) or 'none yet'}"
            )
        raise CommandError(
            f"no published release for {args.customer} {args.period}; release it first (wellbeing release ...)"
        )
    if args.fmt == "parquet":
        frame.write_parquet(args.out)
    elif args.fmt == "csv":
        # The layout of every CSV download in the dashboards (stores.exports): numeric columns, a
        # status, readable names; group labels come from customers' headcount files, so a label such
        # as "=HYPERLINK(...)" is neutralised before it can become a formula in HR's spreadsheet.
        from stores.exports import export_frame, to_csv

        text = to_csv(export_frame(frame))
        args.out.write_text(text, encoding="utf-8") if args.out else sys.stdout.write(text)
    else:
        frame.write_json(args.out) if args.out else sys.stdout.write(frame.write_json() + "\n")
    if args.out:
        print(
            f"exported {frame.height} cells ({int(frame['suppressed'].sum())} suppressed) to {args.out}",
            file=sys.stderr,
        )
    return 0
