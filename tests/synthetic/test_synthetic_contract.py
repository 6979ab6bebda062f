"""The clean synthetic export follows data contract v1 exactly, in every format, and is deterministic."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.synthetic import GeneratedFiles, generate
from privacy.contract import (
    DURATION_RANGE,
    EVENT_COLUMN_NAMES,
    HEADCOUNT_COLUMN_NAMES,
    REQUIRED_EVENT_COLUMNS,
    SATISFACTION_RANGE,
    SERVICES,
    TOPICS,
    WHO5_RAW_RANGE,
    classify_header,
)


def _files(result: GeneratedFiles) -> list[Path]:
    return [*result.events, *result.headcounts]


def test_columns_are_exactly_the_contract(
    clean_csv: GeneratedFiles, clean_events: pl.DataFrame, headcount: pl.DataFrame
) -> None:
    assert tuple(clean_events.columns) == EVENT_COLUMN_NAMES
    assert tuple(headcount.columns) == HEADCOUNT_COLUMN_NAMES
    assert classify_header(clean_events.columns) == "events"
    assert classify_header(headcount.columns) == "headcount"
    assert clean_events.height == clean_csv.n_events
    assert clean_csv.dirty_rows == 0
    assert len(clean_csv.events) == 1  # no re-delivery in clean mode


def test_values_are_in_the_contract(clean_events: pl.DataFrame) -> None:
    ev = clean_events
    for column in REQUIRED_EVENT_COLUMNS:
        assert ev[column].null_count() == 0, column
        assert (ev[column] != "").all(), column
    assert set(ev["service"].unique()) <= set(SERVICES)
    assert set(ev["topic"].drop_nulls().unique()) <= set(TOPICS)
    assert ev["event_id"].n_unique() == ev.height
    assert ev["client_ref"].str.contains(r"^C-\d{8}$").all()
    assert ev["event_id"].str.contains(r"^EV-\d{10}$").all()
    # ISO dates that parse strictly, inside the generated year
    dates = ev["occurred_on"].str.strptime(pl.Date, "%Y-%m-%d", strict=True)
    assert ev["occurred_on"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    assert str(dates.min()) >= "2025-01-01" and str(dates.max()) <= "2025-12-31"
    for column, (lo, hi) in (
        ("duration_min", DURATION_RANGE),
        ("who5_raw", WHO5_RAW_RANGE),
        ("satisfaction", SATISFACTION_RANGE),
    ):
        values = ev[column].drop_nulls().cast(pl.Int64, strict=True)
        assert values.min() >= lo and values.max() <= hi, column
    assert ev["duration_min"].null_count() == 0
    # one client belongs to one customer and one place in its organisation
    per_client = ev.group_by("client_ref").agg(
        pl.struct("customer_id", "site", "department", "role").n_unique().alias("n")
    )
    assert (per_client["n"] == 1).all()


def test_customer_ids_are_slugs(clean_csv: GeneratedFiles, clean_events: pl.DataFrame) -> None:
    assert len(set(clean_csv.customers)) == 3
    assert set(clean_events["customer_id"].unique()) == set(clean_csv.customers)
    assert all(pl.Series(clean_csv.customers).str.contains(r"^[a-z]+(-[a-z]+)+$"))
    roles = set(clean_events["role"].unique())
    assert roles <= {"moderator", "team_lead", "quality", "support"} and "moderator" in roles


def test_headcount_covers_every_event(clean_events: pl.DataFrame, headcount: pl.DataFrame) -> None:
    assert headcount["as_of"].str.contains(r"^\d{4}-\d{2}$").all()
    assert sorted(headcount["as_of"].unique()) == [f"2025-{m:02d}" for m in range(1, 13)]
    hc = headcount.with_columns(pl.col("headcount").cast(pl.Int64))
    assert (hc["headcount"] > 0).all()
    keys = ["customer_id", "site", "department", "role", "as_of"]
    assert hc.select(keys).is_duplicated().sum() == 0
    events = clean_events.with_columns(as_of=pl.col("occurred_on").str.slice(0, 7))
    missing = events.join(hc, on=keys, how="anti")
    assert missing.height == 0, missing.head()


def test_parquet_is_typed_and_holds_the_same_rows(tmp_path: Path, clean_events: pl.DataFrame) -> None:
    result = generate(tmp_path, customers=3, employees=3000, months=12, seed=11, fmt="parquet")
    frame = pl.read_parquet(result.events[0])
    assert tuple(frame.columns) == EVENT_COLUMN_NAMES
    assert frame.schema["occurred_on"] == pl.Date
    assert frame.schema["duration_min"].is_integer() and frame.schema["who5_raw"].is_integer()
    as_text = frame.with_columns(pl.all().cast(pl.String))
    assert as_text.equals(clean_events)


def test_jsonl_holds_the_same_rows(tmp_path: Path, clean_events: pl.DataFrame) -> None:
    result = generate(tmp_path, customers=3, employees=3000, months=12, seed=11, fmt="jsonl")
    frame = pl.read_ndjson(result.events[0], infer_schema_length=None)
    assert tuple(frame.columns) == EVENT_COLUMN_NAMES
    assert frame.with_columns(pl.all().cast(pl.String)).equals(clean_events)


def test_shards_split_the_same_export(tmp_path: Path, clean_events: pl.DataFrame) -> None:
    result = generate(tmp_path, customers=3, employees=3000, months=12, seed=11, shards=3)
    assert [p.name for p in result.events] == [f"provider-export-part-{i:03d}-of-003.csv" for i in (1, 2, 3)]
    parts = [pl.read_csv(p, infer_schema=False) for p in result.events]
    assert all(p.height > 0 for p in parts)
    assert pl.concat(parts).equals(clean_events)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_same_arguments_give_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    kwargs = dict(customers=2, employees=800, months=6, seed=3, dirty=True, fmt=fmt, start="2024-11")
    a = generate(tmp_path / "a", **kwargs)
    b = generate(tmp_path / "b", **kwargs)
    assert [p.name for p in _files(a)] == [p.name for p in _files(b)]
    for pa, pb in zip(_files(a), _files(b)):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    c = generate(tmp_path / "c", **{**kwargs, "seed": 4})
    assert c.events[0].read_bytes() != a.events[0].read_bytes()


def test_invalid_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        generate(tmp_path, start="2025-13")
    with pytest.raises(ValueError, match="fmt"):
        generate(tmp_path, fmt="xlsx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shards"):
        generate(tmp_path, shards=0)


def test_wide_shape_and_shuffle(tmp_path: Path) -> None:
    """Issue 12: the wide shape (1-6 sites, 5-40 departments, 6 roles) and an export in random order."""
    from pipeline.synthetic import WIDE_ROLES, build_frames

    export, headcounts = build_frames(customers=6, employees=400, months=4, seed=3, shape="wide")
    shuffled, _ = build_frames(customers=6, employees=400, months=4, seed=3, shape="wide", shuffle=True)
    assert export["occurred_on"].is_sorted()
    assert not shuffled["occurred_on"].is_sorted()
    assert shuffled.sort("event_id").equals(export.sort("event_id"))
    for frame in headcounts.values():
        assert 1 <= frame["site"].n_unique() <= 6
        assert frame["department"].n_unique() <= 40
        assert set(frame["role"].unique()) <= set(WIDE_ROLES)
    cells = pl.concat(headcounts.values()).select("customer_id", "site", "department", "role").unique()
    assert export.join(cells, on=["customer_id", "site", "department", "role"], how="anti").height == 0
    per_person = export.group_by("client_ref").len()["len"]
    assert per_person.max() <= 500 and per_person.median() <= 2  # heavy-tailed, truncated at 500


def test_generate_cli_wide_shuffle(tmp_path: Path) -> None:
    from pipeline.cli import main

    assert (
        main(
            [
                "generate",
                "--out",
                str(tmp_path),
                "--customers",
                "2",
                "--employees",
                "200",
                "--months",
                "2",
                "--shape",
                "wide",
                "--shuffle",
                "--format",
                "parquet",
            ]
        )
        == 0
    )
    assert not pl.read_parquet(tmp_path / "provider-export.parquet")["occurred_on"].is_sorted()
