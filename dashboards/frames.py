"""Frames in render paths: vectorised period columns, and the one door from polars to the browser.

Why this module exists (the dashboards locked up for good with ~10 concurrent users):
Streamlit runs every session's script in its own thread, and polars 1.36.1 (pinned by
OpenDP) deadlocks the whole process when

* a ``map_elements`` (a Python callback run on polars' thread pool, which needs the GIL)
  runs while another thread converts a frame with ``to_pandas()`` (which holds the GIL
  while it waits for the same pool), or
* two threads call ``to_pandas()`` / ``to_arrow()`` on the same frame object
  (pola-rs/polars #27396, #27472).

Both were reproduced outside the app (``tests/dashboards/test_frames.py``). ``st.dataframe``
given a polars frame calls ``to_pandas()``; Altair given a pandas frame goes through pyarrow's
``from_pandas``. So in render paths:

* no per-row Python callbacks: period columns are derived with vectorised expressions here;
* tables reach ``st.dataframe`` as a pyarrow ``Table`` made by :func:`arrow_table`, under one
  process-wide lock (conversions are serialised, each takes a millisecond on a page's frame);
* charts get their rows inline (:func:`chart_data`: plain Python values, no pandas round trip).

``tests/test_architecture.py`` forbids ``map_elements``, ``to_pandas``, ``to_arrow`` and
``to_numpy`` anywhere else under ``dashboards/``.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import polars as pl
import pyarrow as pa

_INTEROP = threading.Lock()


def period_index(period: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """First and last month index (``year * 12 + month - 1``) of a ``YYYY-MM`` or ``YYYY-Qn`` label."""
    year = period.str.slice(0, 4).cast(pl.Int32, strict=False)
    is_quarter = period.str.contains("Q", literal=True)
    first_month = (
        pl.when(is_quarter)
        .then((period.str.slice(6, 1).cast(pl.Int32, strict=False) - 1) * 3)
        .otherwise(period.str.slice(5, 2).cast(pl.Int32, strict=False) - 1)
    )
    first = year * 12 + first_month
    last = first + pl.when(is_quarter).then(2).otherwise(0)
    return first, last


def period_start(period: pl.Expr) -> pl.Expr:
    """First day of a ``YYYY-MM`` / ``YYYY-Qn`` period as a Date (vectorised; no Python per row)."""
    first, _ = period_index(period)
    return pl.date(first // 12, first % 12 + 1, 1)


def period_label(period: pl.Expr) -> pl.Expr:
    """Readable period labels, vectorised: ``Mar 2025`` for a month, ``Q1 2025`` for a quarter
    (the same text as :func:`stores.labels.period_label`)."""
    is_quarter = period.str.contains("Q")
    month_text = period_start(period).dt.strftime("%b %Y")
    quarter_text = pl.lit("Q") + period.str.slice(6, 1) + pl.lit(" ") + period.str.slice(0, 4)
    return pl.when(is_quarter).then(quarter_text).otherwise(month_text)


def arrow_table(frame: pl.DataFrame) -> pa.Table:
    """``frame`` as a pyarrow Table for ``st.dataframe`` / ``st.table`` (serialised; see module docstring)."""
    with _INTEROP:
        return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN / Infinity: the browser would refuse the whole chart
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def chart_data(frame: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The rows of ``frame`` as inline Vega-Lite data: JSON values only, no pandas or Arrow.

    Dates and datetimes become ISO strings, NaN and infinities become nulls. Encode every
    field with an explicit type (``:Q``, ``:N``, ``:O``, ``:T``); inline data carries none.
    """
    with _INTEROP:
        rows = frame.to_dicts()
    return {"values": [{k: _plain(v) for k, v in row.items()} for row in rows]}
