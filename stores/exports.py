"""One export layout for published figures: every CSV download and ``wellbeing export`` use it.

Numbers stay numbers (``Value``, ``95 % low``, ``95 % high`` are numeric columns; a figure that
is not shown has them empty and says why in ``Status`` and ``Note``), column names are for
people, and text cells cannot be read as spreadsheet formulas.

Privacy reason: the export carries exactly the published cells it is given (already scoped to
the reader's tenant by the caller); a hidden or too-uncertain figure stays without a number.
Formula neutralisation matters because group names come from the customer's headcount file: a
department named ``=HYPERLINK(...)`` must not run in the HR analyst's spreadsheet.

Neutralisation is :mod:`stores.csv_safety`'s (one rule for every CSV the product writes).
"""

from __future__ import annotations

import polars as pl

from stores.csv_safety import neutralise_frame
from stores.labels import DIMENSION_LABELS, METRIC_LABELS, SERVICE_LABELS, TOPIC_LABELS

__all__ = ["EXPORT_COLUMNS", "export_frame", "to_csv"]

EXPORT_COLUMNS: dict[str, pl.DataType] = {
    "Organisation": pl.String(),
    "Period": pl.String(),
    "Breakdown": pl.String(),
    "Group": pl.String(),
    "Figure": pl.String(),
    "Value": pl.Float64(),
    "95 % low": pl.Float64(),
    "95 % high": pl.Float64(),
    "Status": pl.String(),  # published | hidden | too uncertain
    "Note": pl.String(),
}

_STATUS_WORDS = {"published": "published", "hidden": "hidden", "too_uncertain": "too uncertain"}


def export_frame(cells: pl.DataFrame) -> pl.DataFrame:
    """Published cells (``release_cells`` columns) in the export layout, with the names people read, neutralised."""
    groups = {**SERVICE_LABELS, **TOPIC_LABELS, "all": "Whole organisation"}
    if cells.is_empty():
        return pl.DataFrame(schema=EXPORT_COLUMNS)
    status = cells["status"] if "status" in cells.columns else None
    if status is None:
        status_expr = pl.when(pl.col("suppressed")).then(pl.lit("hidden")).otherwise(pl.lit("published"))
    else:
        status_expr = pl.col("status").fill_null(
            pl.when(pl.col("suppressed")).then(pl.lit("hidden")).otherwise(pl.lit("published"))
        )
    shown = status_expr == "published"
    out = cells.select(
        pl.col("customer_id").alias("Organisation"),
        pl.col("period").alias("Period"),
        pl.col("dimension")
        .replace_strict(DIMENSION_LABELS, default=pl.col("dimension"), return_dtype=pl.String)
        .alias("Breakdown"),
        pl.when(pl.col("dimension").is_in(["service", "topic", "total"]))
        .then(pl.col("group_value").replace_strict(groups, default=pl.col("group_value"), return_dtype=pl.String))
        .otherwise(pl.col("group_value"))
        .alias("Group"),
        pl.col("metric")
        .replace_strict(METRIC_LABELS, default=pl.col("metric"), return_dtype=pl.String)
        .alias("Figure"),
        pl.when(shown).then(pl.col("value")).cast(pl.Float64).alias("Value"),
        pl.when(shown).then(pl.col("ci_low")).cast(pl.Float64).alias("95 % low"),
        pl.when(shown).then(pl.col("ci_high")).cast(pl.Float64).alias("95 % high"),
        status_expr.replace_strict(_STATUS_WORDS, default=status_expr, return_dtype=pl.String).alias("Status"),
        (pl.col("reason") if "reason" in cells.columns else pl.lit(None, pl.String)).fill_null("").alias("Note"),
    )
    return neutralise_frame(out)


def to_csv(frame: pl.DataFrame) -> str:
    """The CSV text of an export frame (text columns neutralised again: the caller may have added some)."""
    return neutralise_frame(frame).write_csv()
