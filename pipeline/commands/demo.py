"""``wellbeing demo``: the whole product on the embedded synthetic default.

synthetic provider export (with bad rows and a re-delivery) → landing folder → Dagster
ingest job (encrypted raw store) → Dagster release job for every due customer-month
(OpenDP, thresholds, ledger) → published store → demo accounts → dashboards on loopback.

Re-running it serves the stored releases: nothing is re-noised and no budget is spent.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date

from pipeline.errors import EXIT_FAILURE, CommandError
from pipeline.settings import Settings

DEMO_SEED = 7


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="synthetic data → encrypted ingest → DP releases → dashboards, end to end"
    )
    parser.add_argument("--customers", type=int, default=3)
    parser.add_argument("--employees", type=int, default=12000, help="average employees per customer")
    parser.add_argument("--months", type=int, default=12, help="months of history, ending last month")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--no-serve", action="store_true", help="stop after publishing (do not start the dashboards)")
    parser.set_defaults(func=run)


def demo_start_month(months: int, today: date | None = None) -> str:
    """First month of a history of ``months`` complete months ending last month."""
    today = today or date.today()
    index = today.year * 12 + (today.month - 1) - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def run(args: argparse.Namespace) -> int:
    import warnings

    import dagster as dg

    # Dagster flags its own beta parameters on every definition load; the demo prints a summary instead.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)

    from pipeline import orchestrate
    from pipeline.raw_store import RawStoreError
    from pipeline.synthetic import generate

    settings = Settings.from_env()
    settings.ensure_dirs()
    print(f"data folder: {settings.home}")

    staged = settings.demo_export_dir
    from pipeline.shards import store_exists

    if not store_exists(settings):
        start = demo_start_month(args.months)
        files = generate(
            staged,
            customers=args.customers,
            employees=args.employees,
            months=args.months,
            seed=DEMO_SEED,
            dirty=True,
            fmt="csv",
            start=start,
        )
        print(
            f"1. generated a synthetic provider export: {files.n_events:,} contacts, "
            f"{len(files.customers)} customers, {files.dirty_rows} deliberately bad rows, one re-delivery"
        )
        # Headcounts first (public structure), then the export and its re-delivery, in order.
        ordered = list(files.headcounts) + list(files.events)
        for i, path in enumerate(ordered):
            target = settings.landing_dir / f"{i:03d}-{path.name}"
            shutil.copy2(path, target)
            target.chmod(0o600)  # exports hold client_ref in clear: owner-only, like the landing folder
        shutil.rmtree(staged, ignore_errors=True)
    else:
        print("1. raw store exists: reusing it (make clean-demo starts from scratch)")

    t0 = time.perf_counter()
    try:
        ingest = orchestrate.run_ingest_job(settings)
    except RawStoreError:
        raise  # key, busy: exit codes in pipeline.cli
    except RuntimeError as exc:  # orchestrate's own message: which job failed, where to look
        raise CommandError(str(exc), EXIT_FAILURE) from None
    print(
        f"2. Dagster ingest job: {ingest.files} file(s), {ingest.accepted:,} accepted, "
        f"{ingest.quarantined:,} quarantined, {ingest.duplicate:,} duplicate, {ingest.refused} refused "
        f"({time.perf_counter() - t0:.1f} s)"
    )

    t0 = time.perf_counter()
    try:
        releases = orchestrate.run_release_job(settings, requested_by="demo")
    except RawStoreError:
        raise
    except RuntimeError as exc:
        raise CommandError(str(exc), EXIT_FAILURE) from None
    if releases.published or releases.served or releases.refused:
        print(
            f"3. Dagster release job: {releases.published} new release(s), {releases.served} served from store, "
            f"{releases.refused} refused for budget ({time.perf_counter() - t0:.1f} s) → {settings.published_path}"
        )
    else:
        print(
            "3. Dagster release job: nothing due — every release is already stored and published "
            "(no new noise, no budget spent)"
        )

    from pipeline.commands.users import demo_accounts

    customers = orchestrate.customers_in_store(settings)
    accounts = demo_accounts(customers)
    print("4. demo accounts (also in auth.yaml, bcrypt-hashed):")
    for username, password, role, customer in accounts:
        scope = f" (customer {customer})" if customer else ""
        print(f"     {username:<28} {password:<20} {role}{scope}")

    if args.no_serve:
        print("5. dashboards not started (--no-serve): run `wellbeing dashboards`")
        return 0

    from pipeline.commands.dashboards import start_dashboards

    url = f"http://127.0.0.1:{args.port}"
    print(f"5. dashboards: {url}  — Ctrl-C to stop")
    if customers:
        print(f"   employee privacy notice (no sign-in): {url}/notice?customer={customers[0]}")
    print(f"   Dagster UI: DAGSTER_HOME={settings.dagster_home} WELLBEING_HOME={settings.home} dg dev -h 127.0.0.1")
    proc = start_dashboards(settings, port=args.port)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=10)
        return 0
