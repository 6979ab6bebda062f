"""Formula-injection neutralisation for every CSV the product writes.

A spreadsheet treats a cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage
return followed by one) as a formula: a department named ``=HYPERLINK(...)`` in a published
breakdown could run or exfiltrate when HR opens the export. Such text cells get a leading
apostrophe (the OWASP "CSV injection" advice), which spreadsheets show as plain text.

Only text columns are touched: numbers (a negative interval bound) stay numbers. Use
:func:`neutralise_frame` on a polars frame just before ``write_csv``; :func:`neutralise_cell`
for one value.
"""

from __future__ import annotations

import polars as pl

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
_GUARD = "'"


def neutralise_cell(value: str) -> str:
    """``value`` with a leading apostrophe if a spreadsheet would read it as a formula."""
    return _GUARD + value if value.startswith(FORMULA_PREFIXES) else value


def neutralise_frame(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with every text cell neutralised (:func:`neutralise_cell`); other columns unchanged."""
    pattern = "^[" + "".join("\\t" if p == "\t" else "\\r" if p == "\r" else "\\" + p for p in FORMULA_PREFIXES) + "]"
    text = [name for name, dtype in df.schema.items() if dtype in (pl.String, pl.Categorical, pl.Enum)]
    return df.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(pattern))
        .then(pl.lit(_GUARD) + pl.col(c).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in text
    )
