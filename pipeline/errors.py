"""What a ``wellbeing`` command tells its caller: :class:`CommandError` and the exit codes.

A module of its own so that ``pipeline/cli.py`` imports the commands and the commands import
this, never the CLI (no import loop).

Exit codes: 0 success, 1 unexpected failure, 2 bad input (file refused, invalid option),
3 privacy budget exceeded (nothing published, nothing spent), 4 a store is busy (another
process holds it; nothing was changed, retry later).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of every ``wellbeing`` command."""

    OK = 0
    FAILURE = 1
    BAD_INPUT = 2
    BUDGET_EXCEEDED = 3
    BUSY = 4


EXIT_FAILURE = ExitCode.FAILURE
EXIT_BAD_INPUT = ExitCode.BAD_INPUT
EXIT_BUDGET_EXCEEDED = ExitCode.BUDGET_EXCEEDED
EXIT_BUSY = ExitCode.BUSY


class CommandError(Exception):
    """An error the user can act on; printed without a traceback, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = int(exit_code)
