"""``wellbeing policy show|set``: read and change the release policy in the control store.

Changes are validated (a nonsensical value is refused with the accepted range), recorded in
``policy_history`` with who / when / old / new, and apply to future releases only.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.commands.release import default_requester
from pipeline.errors import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("policy", help="show or change the release policy (annual epsilon, k, z, ...)")
    verbs = parser.add_subparsers(dest="policy_verb", required=True, metavar="show|set")
    show = verbs.add_parser("show", help="print the effective policy and its version")
    show.add_argument("--customer", metavar="C", help="customer id (default: the default policy)")
    show.set_defaults(func=run_show)
    set_ = verbs.add_parser(
        "set",
        help="set one policy value (validated, recorded in policy_history)",
        description="Set KEY to VALUE for --customer C, or for the default policy without --customer.",
    )
    set_.add_argument("key", metavar="KEY", help="e.g. epsilon_annual, k, k_scores, z, granularity.wellbeing")
    set_.add_argument("value", metavar="VALUE")
    set_.add_argument("--customer", metavar="C", help="customer id (default: change the default policy)")
    set_.add_argument("--by", metavar="NAME", help="who makes the change (default: $USER)")
    set_.set_defaults(func=run_set)


def run_show(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings
    from privacy.budget import release_cost
    from privacy.policy import policy_to_flat, policy_warnings
    from stores.control import control_connection, current_policy, policy_overrides

    settings = Settings.from_env()
    with control_connection(settings, read_only=True) as con:
        policy, version = current_policy(con, args.customer)
        default_set = policy_overrides(con, None)
        customer_set = policy_overrides(con, args.customer) if args.customer else {}
    scope = args.customer or "default"
    print(f"policy for {scope} (version {version})")
    for key, value in policy_to_flat(policy).items():
        origin = "customer" if key in customer_set else "default*" if key in default_set else ""
        print(f"  {key:<32} {value!s:<12} {origin}")
    print(
        f"annual loss at the cap: (epsilon={policy.epsilon_annual:g}, delta={policy.delta:g}) = rho {policy.cap.value:.4g} "
        "per employee over any 12 months"
    )
    for granularity, label in (("month", "2025-01"), ("quarter", "2025-Q1")):
        if policy.tables_for(granularity):
            cost = release_cost(policy, label)
            print(
                f"  a {granularity}ly release ({', '.join(policy.tables_for(granularity))}): rho={cost.rho:.4g} "
                f"(epsilon={cost.epsilon:.3g})"
            )
    for warning in policy_warnings(policy):
        print(f"WARNING: {warning}")
    print("(customer = set for this customer; default* = changed default)")
    return 0


def run_set(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings
    from privacy.policy import PolicyError
    from stores.control import control_connection, set_policy_value

    settings = Settings.from_env()
    who = args.by or default_requester()
    try:
        with control_connection(settings) as con:
            change = set_policy_value(con, args.key, args.value, customer_id=args.customer, changed_by=who)
    except PolicyError as exc:
        raise CommandError(f"policy set {args.key} {args.value}: {exc}") from None
    scope = "default" if change.scope == "*" else change.scope
    print(
        f"{scope}: {change.key} {change.old_value} -> {change.new_value} (policy version {change.policy_version}, "
        f"by {change.changed_by}); applies to future releases only"
    )
    for warning in change.warnings:  # accepted, and recorded with the change in the policy history
        print(f"WARNING (recorded with the change): {warning}", file=sys.stderr)
    return 0
