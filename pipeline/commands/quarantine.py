"""``wellbeing quarantine [--file F]``: why rows were quarantined, by file, row, column and reason.

Privacy reason: the quarantine table holds no cell value (reasons name the column and the
rule), so this lists only what is safe to show an operator: file names, row numbers,
columns and reasons.
"""

from __future__ import annotations

import argparse

from pipeline.errors import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quarantine",
        help="list quarantined rows: file, row number, column and reason (never the value)",
        description="Counts per file and reason, then the rows (up to --limit). Values are never stored or shown.",
    )
    parser.add_argument("--file", metavar="F", help="only this delivered file (its name, as listed)")
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="rows to list (default 50; 0 = all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.raw_store import raw_connection
    from pipeline.settings import Settings

    settings = Settings.from_env()
    from pipeline.shards import store_exists

    if not store_exists(settings):
        print("nothing quarantined: the raw store does not exist yet")
        return 0
    where, params = ("WHERE file_name = ?", [args.file]) if args.file else ("", [])
    with raw_connection(settings) as con:
        summary = con.execute(
            f"SELECT file_name, column_name, reason, count(*) FROM quarantine {where} "
            "GROUP BY ALL ORDER BY file_name, count(*) DESC, column_name",
            params,
        ).fetchall()
        limit = f" LIMIT {int(args.limit)}" if args.limit > 0 else ""
        rows = con.execute(
            f"SELECT file_name, row_number, column_name, reason FROM quarantine {where} "
            f"ORDER BY delivery_id, row_number, column_name{limit}",
            params,
        ).fetchall()
        (total,) = con.execute(f"SELECT count(*) FROM quarantine {where}", params).fetchone()  # type: ignore[misc]
        files = [r[0] for r in con.execute("SELECT DISTINCT file_name FROM quarantine ORDER BY 1").fetchall()]
    if not summary:
        if args.file:
            listed = ", ".join(files) if files else "none"
            raise CommandError(f"no quarantined rows for file {args.file!r}; files with quarantined rows: {listed}")
        print("nothing quarantined")
        return 0
    print("quarantined rows by file and reason:")
    for file_name, column, reason, n in summary:
        print(f"  {file_name}  {n:>8}  {column or '-'}: {reason}")
    print(f"{'file':<32} {'row':>9}  {'column':<14} reason")
    for file_name, row_number, column, reason in rows:
        print(f"{file_name:<32} {row_number:>9}  {column or '-':<14} {reason}")
    if len(rows) < total:
        print(f"... {total - len(rows)} more entries (--limit 0 lists all)")
    return 0
