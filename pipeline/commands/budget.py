"""``wellbeing budget``: privacy budget per customer from the authoritative ledger.

For each customer: ρ spent in the rolling 12-month window ending with its latest released
period (or the last complete month), the cap, what remains, and the annual (ε, δ) the cap implies.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "budget",
        help="privacy budget per customer: spent in the rolling 12 months / cap / remaining",
        description="Read the authoritative budget ledger (raw store) and the policy (control store).",
    )
    parser.add_argument("--customer", metavar="C", help="only this customer")
    parser.set_defaults(func=run)


def budget_rows(settings: Settings, customer: str | None) -> list[dict[str, object]]:
    """One row per customer (aggregate budget figures only)."""
    from pipeline.releases.lifecycle import last_complete_month
    from pipeline.shards import ledger, store_exists
    from privacy.periods import in_window, parse_period, window_start
    from stores.control import control_connection, current_policy

    # no store yet: empty ledger; otherwise each customer's shard in turn (or only the one asked for)
    entries = ledger(settings, customer) if store_exists(settings) else []
    customers = sorted({c for c, _, _ in entries} | ({customer} if customer else set()))
    rows: list[dict[str, object]] = []
    with control_connection(settings, read_only=True) as control:
        for c in customers:
            policy, version = current_policy(control, c)
            mine = [(p, float(r)) for cc, p, r in entries if cc == c]
            end = max((parse_period(p).last_month for p, _ in mine), default=last_complete_month())
            spent = sum(r for p, r in mine if in_window(p, end))
            rows.append(
                {
                    "customer": c,
                    "window": f"{window_start(end)}..{end}",
                    "spent_rho": spent,
                    "cap_rho": policy.cap.value,
                    "remaining_rho": max(policy.cap.value - spent, 0.0),
                    "releases": len(mine),
                    "annual_epsilon": policy.epsilon_annual,
                    "delta": policy.delta,
                    "policy_version": version,
                }
            )
    return rows


def run(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings

    settings = Settings.from_env()
    from pipeline.shards import store_exists

    if args.customer and store_exists(settings):
        from pipeline.commands.release import require_known_customer

        require_known_customer(settings, args.customer)
    rows = budget_rows(settings, args.customer)  # key / busy / store errors: exit codes in pipeline.cli
    if not rows:
        print("no releases yet: nothing spent")
        return 0
    header = f"{'customer':<24} {'rolling window':<17} {'spent rho':>9} {'cap rho':>8} {'remaining':>9} {'releases':>8}  annual (eps, delta) at cap"
    print(header)
    for r in rows:
        print(
            f"{r['customer']:<24} {r['window']:<17} {r['spent_rho']:>9.4g} {r['cap_rho']:>8.4g} "
            f"{r['remaining_rho']:>9.4g} {r['releases']:>8}  ({r['annual_epsilon']:.3g}, {r['delta']:g})"
        )
    return 0
