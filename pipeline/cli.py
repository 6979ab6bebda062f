"""``wellbeing`` command line: one sub-command module per verb under ``pipeline/commands``.

Exit codes: 0 success, 1 unexpected failure, 2 bad input (file refused, invalid
option), 3 privacy budget exceeded (nothing published, nothing spent).
"""

from __future__ import annotations

import argparse
import importlib
import sys

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

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_BUDGET_EXCEEDED = 3


class CommandError(Exception):
    """An error the user can act on; printed without a traceback, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
        import os

        os.environ["WELLBEING_HOME"] = args.home
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing partial was stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Re-import so that commands and this entry point share one CommandError class.
    from pipeline.cli import main as _main

    sys.exit(_main())
