"""``wellbeing`` command line: one sub-command module per verb under ``pipeline/commands``.

Exit codes (:mod:`pipeline.errors`): 0 success, 1 unexpected failure, 2 bad input (file
refused, invalid option), 3 privacy budget exceeded (nothing published, nothing spent),
4 a store is busy (another process holds it; nothing was changed).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pipeline.errors import EXIT_BUSY, CommandError
from stores.connect import StoreBusy

# Each module exposes ``register(subparsers)`` which adds its parser and sets ``func``.
COMMAND_MODULES: tuple[str, ...] = (
    "pipeline.commands.demo",
    "pipeline.commands.generate",
    "pipeline.commands.ingest",
    "pipeline.commands.purge",
    "pipeline.commands.release",
    "pipeline.commands.budget",
    "pipeline.commands.policy",
    "pipeline.commands.export",
    "pipeline.commands.dashboards",
    "pipeline.commands.users",
)

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wellbeing",
        description="Anonymised organisational wellbeing analytics (encrypted ingest, DP releases, dashboards).",
    )
    parser.add_argument(
        "--home",
        help="data folder (default: $WELLBEING_HOME or .wellbeing in the working directory)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.home:
        os.environ["WELLBEING_HOME"] = args.home
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        # A command that turned a busy store into its own message still exits "busy".
        return int(EXIT_BUSY) if isinstance(exc.__context__, StoreBusy) else exc.exit_code
    except StoreBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(EXIT_BUSY)
    except KeyboardInterrupt:
        print("interrupted; nothing partial was stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
