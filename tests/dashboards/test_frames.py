"""The polars deadlock behind the dashboard lock-up, and the render-path helpers that avoid it.

The subprocess tests reproduce the pinned polars' deadlock outside the app (one process per
case, killed after a timeout, so a hang fails the test instead of hanging pytest), then show
that the operations the pages use now (vectorised period columns, :func:`arrow_table`,
:func:`chart_data`) survive the same concurrency.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date

import polars as pl
import pyarrow as pa
import pytest

from dashboards.frames import arrow_table, chart_data, period_index, period_start

# Six threads, twenty rounds each, on a frame of 8 chunks × 20,000 rows (as a page's frames
# are several chunks once filtered and concatenated); prints "ok" or is killed while hung.
_STRESS = textwrap.dedent(
    """
    import datetime, os, sys, threading, time
    import polars as pl
    sys.path.insert(0, {root!r})
    from dashboards.frames import arrow_table, chart_data, period_start

    pieces = [pl.DataFrame({{"period": [f"20{{20 + i % 6}}-{{i % 12 + 1:02d}}" for i in range(20_000)],
                             "value": [float(i) for i in range(20_000)]}}) for _ in range(8)]
    shared = pl.concat(pieces, rechunk=False)

    def frame():
        return pl.concat(pieces, rechunk=False)

    def month_start(p):
        return datetime.date(int(p[:4]), int(p[5:7]), 1)

    ops = {{
        "map_elements": lambda: frame().lazy().with_columns(
            m=pl.col("period").map_elements(month_start, return_dtype=pl.Date)).collect(),
        "to_pandas": lambda: frame().to_pandas(),
        "shared_to_pandas": lambda: shared.to_pandas(),
        "period_start": lambda: frame().lazy().with_columns(m=period_start(pl.col("period"))).collect(),
        "arrow_table": lambda: arrow_table(frame()),
        "shared_arrow_table": lambda: arrow_table(shared),
        "chart_data": lambda: chart_data(frame().head(2_000)),
    }}
    a, b = sys.argv[1], sys.argv[2]

    def work(op):
        for _ in range(20):
            ops[op]()

    threads = [threading.Thread(target=work, args=(a if i % 2 == 0 else b,), daemon=True) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("ok", flush=True)
    os._exit(0)
    """
)


def _survives(a: str, b: str, timeout: float) -> bool:
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    try:
        out = subprocess.run(
            [sys.executable, "-c", _STRESS.format(root=root), a, b],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and "ok" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("a,b", [("map_elements", "to_pandas"), ("shared_to_pandas", "shared_to_pandas")])
def test_the_pinned_polars_deadlocks_on_what_the_pages_used_to_do(a: str, b: str) -> None:
    """Reproduction of the root cause (if a future polars fixes it, delete this test and the note)."""
    if pl.__version__ != "1.36.1":
        pytest.skip(f"documents polars 1.36.1; this is {pl.__version__}")
    assert not _survives(a, b, timeout=20), f"{a} + {b} did not deadlock: polars changed, update dashboards.frames"


@pytest.mark.slow
@pytest.mark.parametrize(
    "a,b",
    [("period_start", "arrow_table"), ("shared_arrow_table", "shared_arrow_table"), ("period_start", "chart_data")],
)
def test_render_path_helpers_survive_the_same_concurrency(a: str, b: str) -> None:
    assert _survives(a, b, timeout=120), f"{a} + {b} hung"


def test_period_start_and_index_cover_months_and_quarters() -> None:
    frame = pl.DataFrame({"period": ["2025-01", "2025-12", "2025-Q1", "2025-Q4", "2024-Q2"]})
    out = frame.with_columns(start=period_start(pl.col("period")), idx=period_index(pl.col("period"))[1])
    assert out["start"].to_list() == [
        date(2025, 1, 1),
        date(2025, 12, 1),
        date(2025, 1, 1),
        date(2025, 10, 1),
        date(2024, 4, 1),
    ]
    assert out["idx"].to_list() == [2025 * 12, 2025 * 12 + 11, 2025 * 12 + 2, 2025 * 12 + 11, 2024 * 12 + 5]


def test_chart_data_holds_json_values_only() -> None:
    frame = pl.DataFrame(
        {"month": [date(2025, 1, 1), date(2025, 2, 1)], "value": [1.5, float("nan")], "group": ["a", None]}
    )
    data = chart_data(frame)
    values = data["values"]
    assert values == [
        {"month": "2025-01-01", "value": 1.5, "group": "a"},
        {"month": "2025-02-01", "value": None, "group": None},
    ]
    json.dumps(values, allow_nan=False)  # what the browser's JSON.parse accepts


def test_arrow_table_keeps_columns_and_types() -> None:
    frame = pl.DataFrame({"name": ["x", "y"], "n": [1, 2], "v": [0.5, None]})
    table = arrow_table(frame)
    assert isinstance(table, pa.Table)
    assert table.column_names == ["name", "n", "v"]
    assert table.column("v").to_pylist() == [0.5, None]
    assert not pa.types.is_string_view(table.schema.field("name").type)  # the browser's Arrow reads it
