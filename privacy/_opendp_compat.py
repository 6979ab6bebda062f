"""Workarounds for the pinned opendp 0.16.0 / polars 1.36.1 (see ``stack-notes.md`` §2).

Imported only by :mod:`privacy.measure`; every function here takes OpenDP objects built there.
Each workaround names the upstream behaviour it covers; remove it when the pin moves and the
tests in ``tests/privacy`` still pass.

* ``truncate_num_groups(k)`` keeps k−1 groups (dense rank starts at 1, filter is ``rank < k``)
  but OpenDP accounts k, and its default ``keep="sample"`` crashes on polars 1.36.1. Neither
  is used: the usage query bounds the cells per employee by its *rows* instead
  (:func:`truncate_cells`: ``int_range(len).over(employee) < G``, which OpenDP reads as at most
  G rows per employee, exactly, hence at most G cells) and the people queries truncate to one
  row per employee (:func:`one_row_per_identifier`). OpenDP then accounts
  ``min(G, number of keys)`` cells per employee (:func:`accounted_groups`), and
  :mod:`privacy.measure` asserts its privacy map equals the hand-computed loss, so a change of
  either behaviour fails loudly.
* ``LazyFrameQuery.resolve()`` always runs a ~50-step binary search over a global scale
  (≈ 2 s per query) even when every aggregate has an explicit ``scale``. With explicit scales
  the measurement is fully determined, so :func:`resolve_fixed` builds it once with
  ``make_private_lazyframe`` and :func:`release` hands it to the query's own context, whose
  compositor still checks it against the query's budget (and refuses it if it does not fit).
  ``query.summarize(alpha)`` is ``summarize_polars_measurement(query.resolve(), alpha)``; we call
  the latter on a measurement we built (once per query plan and process: a summary depends only
  on the plan's mechanisms and explicit scales, see ``privacy.measure._summaries``).
* ``.dp.sum``/``.dp.mean`` impute nulls to the midpoint of the bounds: :func:`assert_no_nulls`
  refuses a frame with nulls in a measured column (the reduction fills 0 + an indicator).
* A column of dtype ``Null`` is refused by OpenDP: the reduction casts to a fixed schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl


def accounted_groups(groups: int, n_keys: int) -> int:
    """Number of cells per employee OpenDP 0.16 accounts after :func:`truncate_cells` (``groups`` rows).

    At most ``groups`` rows, so at most ``groups`` cells, capped by the number of public keys of
    the query: an employee cannot touch more cells than exist. Same under zCDP and pure DP.
    """
    return min(groups, n_keys)


def truncate_cells(query: Any, identifier: str, cell: str, groups: int) -> Any:
    """Truncate a query to ``groups`` rows per identifier and one row per (identifier, cell).

    Two truncations OpenDP's plan matcher (``make_stable_lazyframe/truncate/matching``)
    recognises: ``int_range(len).over(identifier) < groups`` keeps the first ``groups`` rows of
    each identifier (``per_group = groups`` over no grouping columns, so at most ``groups`` cells:
    ``L₀ = groups``, no off-by-one), then a group-by on (identifier, cell) as the last truncation
    (OpenDP requires it last) gives one row per (identifier, cell): ``L∞ = 1`` for a count. The
    reduction already emits at most ``groups`` rows per employee, one per cell, so nothing is
    dropped. The bounds are OpenDP's own; :mod:`privacy.measure` asserts its privacy map.
    """
    import polars as pl

    return query.filter(pl.int_range(pl.len()).over(identifier) < groups).group_by(identifier, cell).agg()


def one_row_per_identifier(query: Any, identifier: str, cell: str, columns: Iterable[str]) -> Any:
    """Truncate a query to one row per identifier: ``group_by(identifier)`` as the last truncation.

    Each identifier keeps one row whose ``cell`` is its first cell and whose ``columns`` are the
    sums of its rows (clipped again by ``dp.sum``), so it touches one cell of any later group-by:
    OpenDP accounts ``L₀ = 1`` and per-cell contributions of one row (checked against the
    hand-computed loss by :mod:`privacy.measure`). The people frame has one row per employee, so
    the values are unchanged. This avoids ``truncate_num_groups`` and its off-by-one entirely.
    """
    import polars as pl

    return query.group_by(identifier).agg(pl.col(cell).first(), *[pl.col(c).sum() for c in columns])


def resolve_fixed(query: Any, dp: Any) -> tuple[Any, Any]:
    """Build the measurement of a query whose aggregates all carry an explicit ``scale``.

    Returns ``(measurement, inner_query)``; raises ``ValueError`` if OpenDP's privacy map of
    the measurement exceeds the budget the context allotted to this query.
    """
    plan = object.__getattribute__(query, "polars_plan")
    inner = object.__getattribute__(query, "_query")
    input_domain, input_metric = inner._chain
    measurement = dp.m.make_private_lazyframe(
        input_domain, input_metric, inner._output_measure, plan, global_scale=None
    )
    if not measurement.check(inner._d_in, inner._d_out):
        raise ValueError(f"query loss {measurement.map(inner._d_in)} exceeds its allotted budget {inner._d_out}")
    return measurement, inner


def release(inner: Any, measurement: Any) -> pl.DataFrame:
    """Run the measurement through the context's compositor (which enforces the budget) once."""
    return inner._context(measurement).collect()


def assert_no_nulls(frame: pl.DataFrame, columns: Iterable[str]) -> None:
    """Refuse nulls in measured columns (OpenDP would silently impute the bounds' midpoint)."""
    bad = [c for c in columns if frame[c].null_count() > 0]
    if bad:
        raise ValueError(f"measured column(s) {bad} contain nulls; fill or filter them before measuring")
