"""Workarounds for the pinned opendp 0.16.0 / polars 1.36.1 (see ``stack-notes.md`` §2).

Imported only by :mod:`privacy.measure`; every function here takes OpenDP objects built there.
Each workaround names the upstream behaviour it covers; remove it when the pin moves and the
tests in ``tests/privacy`` still pass.

* ``truncate_num_groups(k)`` keeps k−1 groups (dense rank starts at 1, filter is ``rank < k``):
  we pass ``G + 1`` to keep ``G`` (only the usage query needs a groups bound; the people
  queries truncate to one row per employee with :func:`one_row_per_identifier`). OpenDP then accounts ``min(G + 1, number of keys)`` cells
  per employee (an over-estimate: privacy-safe, costs √((G+1)/G) in Gaussian noise).
  :func:`accounted_groups` states this, and :func:`privacy.measure` asserts OpenDP's privacy
  map equals the hand-computed loss, so a change of either behaviour fails loudly.
* ``keep="sample"`` (the default) crashes on polars 1.36.1: use ``keep="first"``.
* Speed: ``truncate_per_group`` is a window ``int_range(len).over(id, *by) < k`` and
  ``truncate_num_groups`` ranks ``pl.struct(*by)``; in polars 1.36 both windows cost about
  0.7 µs per row each (≈ 20 ms per query on 3,000 employees). :func:`truncate_cells` writes the
  two truncations in the other forms OpenDP's plan matcher
  (``make_stable_lazyframe/truncate/matching``) accepts, with the same bounds: a dense rank of
  the bare cell column over the identifier (``num_groups``), then a group-by on
  (identifier, cell) as the last truncation (``per_group = 1``), which aggregates each
  employee's rows of a cell and is ~15× cheaper than a window. The bounds OpenDP derives are
  unchanged, and :mod:`privacy.measure` still asserts its privacy map equals ours.
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

from typing import Any, Iterable

import polars as pl

TRUNCATE_KEEP = "first"


def accounted_groups(groups: int, n_keys: int) -> int:
    """Number of cells per employee OpenDP 0.16 accounts after ``truncate_num_groups(groups + 1)``.

    ``groups + 1`` (the off-by-one above), capped by the number of public keys of the query:
    an employee cannot touch more cells than exist. Same under zCDP and pure DP.
    """
    return min(groups + 1, n_keys)


def truncate_groups_arg(groups: int) -> int:
    """The ``k`` to pass to ``truncate_num_groups`` so that ``groups`` groups are kept."""
    return groups + 1


def truncate_cells(query: Any, identifier: str, cell: str, groups: int) -> Any:
    """Truncate a query to ``groups`` cells per identifier and one row per (identifier, cell).

    Same contribution bounds as ``.truncate_per_group(1, by=[cell]).truncate_num_groups(groups
    + 1, by=[cell], keep="first")`` (the +1 is the off-by-one above: ``rank < groups + 1``
    keeps ``groups`` cells and OpenDP accounts ``groups + 1``): the per-group bound comes from
    the group-by truncation (OpenDP requires it to be the last truncation and its keys to cover
    the filter truncation's ``by``), so each (employee, cell) contributes one row (the query
    counts rows only). The reduction already emits one row per (employee, cell).
    """
    import polars as pl

    return (
        query.filter(pl.col(cell).rank("dense").over(identifier) < truncate_groups_arg(groups))
        .group_by(identifier, cell)
        .agg()
    )


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
        raise ValueError(
            f"query loss {measurement.map(inner._d_in)} exceeds its allotted budget {inner._d_out}"
        )
    return measurement, inner


def release(inner: Any, measurement: Any) -> pl.DataFrame:
    """Run the measurement through the context's compositor (which enforces the budget) once."""
    return inner._context(measurement).collect()


def assert_no_nulls(frame: pl.DataFrame, columns: Iterable[str]) -> None:
    """Refuse nulls in measured columns (OpenDP would silently impute the bounds' midpoint)."""
    bad = [c for c in columns if frame[c].null_count() > 0]
    if bad:
        raise ValueError(f"measured column(s) {bad} contain nulls; fill or filter them before measuring")
