"""Page-render benchmark of the dashboards on a published store of 50 customers × 36 months.

Builds the store (plausible released cells, written with the published schema), creates one
account per role, then renders every page with Streamlit's AppTest and prints, per page:
the cold render (st.cache_data cleared, so the read of published.duckdb is included) and the
warm render (cached). Target: every page ≤ 1 s.

    .venv/bin/python benchmarks/bench_dashboards.py [--customers 50] [--months 36] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboards" / "app.py"
TARGET_S = 1.0

PAGES = {
    "hr_acme": ["views/hr_overview.py", "views/hr_trends.py", "views/hr_breakdown.py"],
    "provider": ["views/provider_uptake.py"],
    "privacy": [
        "views/privacy_budget.py",
        "views/privacy_policy.py",
        "views/privacy_whatif.py",
        "views/privacy_release.py",
        "views/notice.py",
    ],
}


def _factory():
    spec = importlib.util.spec_from_file_location(
        "published_factory", ROOT / "tests" / "dashboards" / "published_factory.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench_dashboards_"))
    os.environ["WELLBEING_HOME"] = str(home)
    for var in ("WELLBEING_RAW_KEY", "WELLBEING_PSEUDONYM_KEY"):
        os.environ.pop(var, None)

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from stores.accounts import add_user

    customers = ["acme"] + [f"customer{i:02d}" for i in range(1, args.customers)]
    t0 = time.perf_counter()
    _factory().write_published_store(home / "published.duckdb", customers, args.months, start="2023-01")
    build_s = time.perf_counter() - t0
    add_user(home / "auth.yaml", "hr_acme", "bench-password", "hr", "acme")
    add_user(home / "auth.yaml", "provider", "bench-password", "provider", None)
    add_user(home / "auth.yaml", "privacy", "bench-password", "privacy_officer", None)
    size_mb = (home / "published.duckdb").stat().st_size / 1e6
    print(
        f"published store: {args.customers} customers × {args.months} months, "
        f"{size_mb:.1f} MB, built in {build_s:.1f} s at {home}"
    )

    results = []
    worst = 0.0
    for user, pages in PAGES.items():
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.session_state["authentication_status"] = True
        at.session_state["username"] = user
        at.run()  # warm-up: imports and the role's default page
        if at.exception:
            print(f"{user}: {at.exception}")
            return 1
        for page in pages:
            cold, warm = [], []
            for _ in range(args.repeat):
                st.cache_data.clear()
                t = time.perf_counter()
                at.switch_page(page).run()
                cold.append(time.perf_counter() - t)
                if at.exception:
                    print(f"{user} {page}: {at.exception}")
                    return 1
                t = time.perf_counter()
                at.run()
                warm.append(time.perf_counter() - t)
            c, w = statistics.median(cold), statistics.median(warm)
            worst = max(worst, c, w)
            results.append((user, page, c, max(cold), w))

    print(f"\n{'role account':<10} {'page':<28} {'cold median':>12} {'cold max':>10} {'warm median':>12}")
    for user, page, c, cmax, w in results:
        flag = "" if max(c, w) <= TARGET_S else "  > 1 s!"
        print(f"{user:<10} {page:<28} {c * 1000:>10.0f}ms {cmax * 1000:>8.0f}ms {w * 1000:>10.0f}ms{flag}")
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    verdict = "OK" if worst <= TARGET_S else "TOO SLOW"
    print(f"\nslowest median render: {worst * 1000:.0f} ms (target ≤ {TARGET_S * 1000:.0f} ms): {verdict}")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
