"""``wellbeing`` command line: one sub-command module per verb under ``pipeline/commands``.

Exit codes (:mod:`pipeline.errors`): 0 success, 1 unexpected failure, 2 bad input (file
refused, invalid option, a missing, wrong or exposed key), 3 privacy budget exceeded (nothing
published, nothing spent), 4 a store is busy (another process holds it; nothing was changed).

No input ends in a traceback: every exception is turned into one ``error:`` line and its exit
code here. Privacy reason: a library's message can quote a row of the raw store, so an
unexpected exception is reported by its class name only (``WELLBEING_DEBUG=1`` adds the
stack's file and line numbers, still without the message).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from pipeline.errors import EXIT_BAD_INPUT, EXIT_BUDGET_EXCEEDED, EXIT_BUSY, EXIT_FAILURE, CommandError
from pipeline.preload import preload
from stores.connect import StoreBusy

DEBUG_ENV = "WELLBEING_DEBUG"

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
    "pipeline.commands.quarantine",
    "pipeline.commands.keys",
    "pipeline.commands.customer",
    "pipeline.commands.shards",
    "pipeline.commands.completion",
)


def version() -> str:
    """The installed package version (``wellbeing --version``)."""
    from importlib import metadata  # (imported when asked: it was about 25 ms of every start-up)

    try:
        return metadata.version("wellbeing-analytics")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"wellbeing {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wellbeing",
        description="Anonymised organisational wellbeing analytics (encrypted ingest, DP releases, dashboards).",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "--home",
        help="data folder (default: $WELLBEING_HOME or .wellbeing in the working directory)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def exit_code_for(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message of an exception that reached the command line."""
    import duckdb

    from pipeline.keys import KeyError_
    from pipeline.raw_store import RawStoreError, RawStoreKeyError
    from pipeline.settings import SettingsError
    from pipeline.shards import UnknownCustomer
    from privacy.budget import BudgetExceeded

    if isinstance(exc, CommandError):
        # A command that turned a busy store into its own message still exits "busy".
        return (int(EXIT_BUSY) if isinstance(exc.__context__, StoreBusy) else exc.exit_code), str(exc)
    if isinstance(exc, StoreBusy):
        return int(EXIT_BUSY), str(exc)
    if isinstance(exc, KeyError_ | RawStoreKeyError | SettingsError | UnknownCustomer):
        return int(EXIT_BAD_INPUT), str(exc)
    if isinstance(exc, BudgetExceeded):
        return int(EXIT_BUDGET_EXCEEDED), str(exc)
    from pipeline.shard_storage import ShardConflict, ShardStoreSetupError

    if isinstance(exc, ShardConflict):  # another run wrote the shard meanwhile: run it again
        return int(EXIT_BUSY), str(exc)
    if isinstance(exc, ShardStoreSetupError):
        return int(EXIT_BAD_INPUT), str(exc)
    if isinstance(exc, RawStoreError):
        return int(EXIT_FAILURE), str(exc)
    if isinstance(exc, duckdb.OutOfMemoryException):
        return int(EXIT_FAILURE), (
            "DuckDB ran out of memory; nothing partial was stored: give it more with "
            "WELLBEING_INGEST_MEMORY_LIMIT (ingest, default 2GB) or split the delivery"
        )
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        # The operator's own paths and the system's reason (no file content).
        where = f": {exc.filename}" if exc.filename else " (check the paths given)"
        return int(EXIT_BAD_INPUT), f"{exc.strerror or type(exc).__name__}{where}"
    return int(EXIT_FAILURE), (
        f"unexpected {type(exc).__name__}; nothing partial was stored. Details are not shown because they "
        f"could quote stored data; set {DEBUG_ENV}=1 to see where it happened, and report it"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 on a bad option
    if args.home:
        os.environ["WELLBEING_HOME"] = args.home
    try:
        preload(getattr(args, "preload", ()))  # a command's heavy modules, then its work (pipeline.preload)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader went away (`wellbeing customer list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 141
    except KeyboardInterrupt:
        print("interrupted; nothing partial was stored", file=sys.stderr)
        return 130
    except Exception as exc:
        code, message = exit_code_for(exc)
        if os.environ.get(DEBUG_ENV) and code == EXIT_FAILURE:
            # Where, never what: file names, line numbers and function names only.
            for frame in traceback.extract_tb(exc.__traceback__):
                print(f"  at {frame.filename}:{frame.lineno} in {frame.name}", file=sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
