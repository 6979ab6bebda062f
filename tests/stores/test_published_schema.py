"""The published schema is written once and everything else is derived from it."""

from __future__ import annotations

import duckdb
import polars as pl

from privacy.structure import HEADCOUNT_SCHEMA
from privacy.suppression import CELL_SCHEMA
from stores import published


def test_release_cells_follow_the_privacy_librarys_cell() -> None:
    assert published.column_names("release_cells") == ("release_id", *CELL_SCHEMA)
    assert published.CELL_COLUMNS == tuple(CELL_SCHEMA)
    assert set(published.MASKED_CELL_COLUMNS) == {"value", "ci_low", "ci_high", "noise_sd"}
    assert published.column_names("public_headcount") == tuple(HEADCOUNT_SCHEMA)


def test_ddl_polars_schema_and_column_sql_agree() -> None:
    con = duckdb.connect()
    con.execute(published.ddl())
    for table in published.PUBLISHED_TABLES:
        rows = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table]
        ).fetchall()
        assert [(c.name, c.duckdb) for c in published.TABLES[table]] == rows
        empty = con.execute(f"SELECT {published.column_sql(table)} FROM {table}").pl()
        assert pl.DataFrame(schema=published.polars_schema(table)).schema == empty.schema


def test_headcount_is_one_integer_type() -> None:
    assert published.polars_schema("public_headcount")["headcount"] == pl.Int32
    assert published.create_table_sql("public_headcount").endswith("headcount INTEGER)")


def test_the_declared_schema_has_no_identifier_column() -> None:
    con = duckdb.connect()
    con.execute(published.ddl())
    assert published.identifier_columns(con, "memory") == []
    assert published.unexpected_tables(con, "memory") == ([], [])
    con.execute("CREATE TABLE client_map (client_ref VARCHAR)")
    assert published.identifier_columns(con, "memory") == ["client_map.client_ref"]
    assert published.unexpected_tables(con, "memory") == (["client_map"], [])
