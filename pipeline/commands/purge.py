"""``wellbeing purge --older-than MONTHS``: delete raw data past the retention window."""

from __future__ import annotations

import argparse

from pipeline.errors import EXIT_BAD_INPUT, CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "purge",
        help="delete raw events, quarantine rows and archived files older than the retention window",
    )
    parser.add_argument(
        "--older-than",
        type=int,
        metavar="MONTHS",
        default=None,
        help="retention window in whole months (default: $WELLBEING_RETENTION_MONTHS or 24)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.retention import purge_older_than
    from pipeline.settings import Settings

    settings = Settings.from_env()
    months = settings.retention_months if args.older_than is None else args.older_than
    if months < 1:
        raise CommandError(f"purge --older-than {months}: the retention window is at least 1 month", EXIT_BAD_INPUT)
    report = purge_older_than(settings, months)  # key / busy / store errors: exit codes in pipeline.cli
    print(report.summary())
    return 0
