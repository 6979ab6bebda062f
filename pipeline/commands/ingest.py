"""``wellbeing ingest FILE...``: validate and load provider deliveries into the encrypted raw store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.errors import EXIT_BAD_INPUT


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="ingest event exports and headcount files (CSV, Parquet, JSON Lines)",
        description=(
            "Check each file against the data contract (docs/data-contract.md), quarantine bad rows, "
            "pseudonymise client_ref and load the rest in one transaction per file. Exit code 2 when a file "
            "was refused (nothing from that file is stored; the other files are still loaded)."
        ),
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.ingest import ingest_files
    from pipeline.progress import progress
    from pipeline.settings import Settings

    settings = Settings.from_env()
    # Each file's summary (stdout) or refusal (stderr) is printed as soon as it is done;
    # progress (stderr): a bar on a terminal, one line per file and pass otherwise.
    with progress("ingest", len(args.files)) as reporter:
        _, refused = ingest_files(settings, list(args.files), progress=reporter)
    if refused:
        print(f"{len(refused)} of {len(args.files)} file(s) refused; fix them and ingest again", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
