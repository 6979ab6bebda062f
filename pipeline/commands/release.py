"""``wellbeing release``: draw (once), store and publish a customer-period release.

Exit codes: 0 released or served from store, 2 bad input (unknown customer, unknown or
incomplete period, no public structure, a key problem), 3 budget exceeded (nothing drawn,
published or spent), 4 a store is busy. ``--all-due`` prints one line per release as soon as
its period is stored.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import TYPE_CHECKING

from pipeline.errors import EXIT_BUDGET_EXCEEDED, EXIT_FAILURE, CommandError
from pipeline.preload import RELEASE_MODULES

if TYPE_CHECKING:
    from pipeline.releases.lifecycle import ReleaseOutcome
    from pipeline.settings import Settings


def default_requester() -> str:
    """``$USER`` (or the login name) of the person running the command."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:
        return "unknown"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "release",
        help="release a customer-period (drawn once; re-runs serve the stored release)",
        description=(
            "Draw the differentially private release of one customer and period, store it with its "
            "budget-ledger row in one transaction, and publish it. Re-running serves the stored release "
            "and spends nothing; --reissue draws anew and spends again (recorded). Only complete periods "
            "(months that have ended) can be released. Exit code 3 when the rolling 12-month budget would "
            "be exceeded (nothing is published or spent)."
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--customer", metavar="C", help="customer id")
    target.add_argument("--all-due", action="store_true", help="release every complete, not yet released period")
    parser.add_argument("--period", metavar="YYYY-MM", help="period: YYYY-MM, or YYYY-Qn for quarterly tables")
    parser.add_argument("--reissue", action="store_true", help="draw anew and spend budget again (privacy officer)")
    parser.add_argument("--requested-by", metavar="NAME", help="who asks (default: $USER)")
    parser.add_argument(
        "--workers",
        metavar="N",
        type=_workers,
        help="--all-due: customers released side by side in N processes (default: one per core; 1: in this process)",
    )
    parser.set_defaults(func=run, preload=RELEASE_MODULES)  # loaded first, then frozen (pipeline.preload)


def _workers(text: str) -> int:
    """``--workers``: a whole number from 1 (argparse reports anything else as bad input, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers takes a whole number of processes, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--workers takes a whole number of processes from 1, not {value}")
    return value


def outcome_line(o: ReleaseOutcome) -> str:
    """One line per release outcome (aggregate facts only)."""
    if o.status == "refused":
        return f"{o.customer_id} {o.period}: refused — {o.message}"
    if o.status == "failed":
        return f"{o.customer_id}: not released — {o.message}"
    spent = f" rho={o.cost.rho:.4g}" if o.cost else ""
    return f"{o.customer_id} {o.period}: {o.status}{spent} ({o.cells} cells, {o.suppressed} suppressed)"


def require_known_customer(settings: Settings, customer: str) -> None:
    """Refuse a customer id the raw store has never seen (no headcount, no events): bad input."""
    from pipeline.shards import customers

    known = customers(settings)
    if customer not in known:
        listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "") if known else "none yet"
        raise CommandError(f"unknown customer {customer!r}: known customers: {listed}")


def run(args: argparse.Namespace) -> int:
    from pipeline.progress import progress
    from pipeline.releases.lifecycle import IncompletePeriod, NoDataForPeriod, run_all_due, run_release
    from pipeline.settings import Settings
    from pipeline.shards import UnknownCustomer, store_exists
    from privacy.budget import BudgetExceeded

    settings = Settings.from_env()
    who = args.requested_by or default_requester()
    if args.all_due:
        if args.period or args.reissue:
            raise CommandError("release --all-due takes no --period and no --reissue")
        from pipeline.releases.parallel import default_workers

        workers = args.workers or default_workers()
        if not store_exists(settings):
            raise CommandError("nothing to release: the raw store does not exist yet (wellbeing ingest FILE first)")
        # One line per release as soon as its period is stored; a bar on a terminal.
        with progress("release", None) as reporter:
            outcomes = run_all_due(settings, who, on_outcome=lambda o: reporter.tick(outcome_line(o)), workers=workers)
        refused = [o for o in outcomes if o.status == "refused"]
        failed = [o for o in outcomes if o.status == "failed"]
        print(
            f"{len(outcomes) - len(refused) - len(failed)} released, {len(refused)} refused for budget"
            + (f", {len(failed)} customer(s) failed (see above; the others were released)" if failed else "")
            + f" -> {settings.published_path}"
        )
        if failed:
            return EXIT_FAILURE
        return EXIT_BUDGET_EXCEEDED if refused else 0

    if args.workers is not None:
        raise CommandError("release --workers goes with --all-due (one customer-period runs in this process)")
    if not args.period:
        raise CommandError("release --customer needs --period YYYY-MM (or use --all-due)")
    if not store_exists(settings):
        raise CommandError("nothing to release: the raw store does not exist yet (wellbeing ingest FILE first)")
    try:
        outcome = run_release(settings, args.customer, args.period, requested_by=who, reissue=args.reissue)
    except UnknownCustomer:  # (one catalog read on the way in; the list of known ones only when needed)
        require_known_customer(settings, args.customer)
        raise
    except BudgetExceeded as exc:
        raise CommandError(str(exc), EXIT_BUDGET_EXCEEDED) from None
    except (IncompletePeriod, NoDataForPeriod) as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:  # e.g. no public structure (headcount) for the customer
        raise CommandError(f"release {args.customer} {args.period}: {exc}") from None
    spent = f"rho={outcome.cost.rho:.4g} spent" if outcome.cost else "nothing spent"
    print(
        f"{outcome.customer_id} {outcome.period}: {outcome.status} (version {outcome.version}, {spent}; "
        f"{outcome.cells} cells, {outcome.suppressed} suppressed) -> {settings.published_path}"
    )
    return 0
