"""Dirty mode: every row-level rule is broken by a documented share of rows, plus a re-delivery."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.synthetic import DIRTY_MIX, GeneratedFiles, generate
from privacy.contract import DURATION_RANGE, EVENT_COLUMN_NAMES, SATISFACTION_RANGE, SERVICES, TOPICS, WHO5_RAW_RANGE


def _as_text(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_ndjson(path, infer_schema_length=None)
    return frame.with_columns(pl.all().cast(pl.String))


def _problems(ev: pl.DataFrame) -> dict[str, pl.Series]:
    """An independent check of each contract row rule (True = row breaks the rule)."""

    def out_of_range(column: str, bounds: tuple[int, int]) -> pl.Expr:
        value = pl.col(column).cast(pl.Int64, strict=False)
        return value.is_not_null() & ~value.is_between(*bounds)

    def non_integer(column: str) -> pl.Expr:
        return (
            pl.col(column).is_not_null()
            & (pl.col(column) != "")
            & pl.col(column).cast(pl.Int64, strict=False).is_null()
        )

    checks = {
        "bad_date": pl.col("occurred_on").str.strptime(pl.Date, "%Y-%m-%d", strict=False).is_null(),
        "who5_out_of_range": out_of_range("who5_raw", WHO5_RAW_RANGE),
        "duration_out_of_range": out_of_range("duration_min", DURATION_RANGE),
        "satisfaction_out_of_range": out_of_range("satisfaction", SATISFACTION_RANGE),
        "unknown_service": ~pl.col("service").is_in(SERVICES),
        "unknown_topic": pl.col("topic").is_not_null() & ~pl.col("topic").is_in(TOPICS),
        "empty_client_ref": pl.col("client_ref").is_null() | (pl.col("client_ref") == ""),
        "non_integer": non_integer("duration_min") | non_integer("who5_raw") | non_integer("satisfaction"),
    }
    frame = ev.select(**checks)
    return {name: frame[name].fill_null(True) for name in checks}


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("dirty"), customers=3, employees=3000, months=12, seed=5, dirty=True)


def test_each_rule_is_broken_by_about_its_documented_share(dirty: GeneratedFiles) -> None:
    ev = _as_text(dirty.events[0])
    assert tuple(ev.columns) == EVENT_COLUMN_NAMES
    problems = _problems(ev)
    shares = {}
    for name, _, share, _ in DIRTY_MIX:
        shares[name] = shares.get(name, 0.0) + share
    for name, share in shares.items():
        hits = int(problems[name].sum())
        assert hits >= 1, name
        assert abs(hits - share * ev.height) <= max(2, 0.2 * share * ev.height), (name, hits)
    any_problem = pl.DataFrame(problems).select(pl.any_horizontal(pl.all())).to_series()
    assert int(any_problem.sum()) == dirty.dirty_rows  # one broken rule per bad row, nothing else broken
    assert 0.015 <= dirty.dirty_rows / ev.height <= 0.025


def test_redelivery_repeats_ten_percent_with_some_corrections(dirty: GeneratedFiles) -> None:
    assert len(dirty.events) == 2 and dirty.events[1].name == "provider-export-redelivery.csv"
    first, again = _as_text(dirty.events[0]), _as_text(dirty.events[1])
    assert tuple(again.columns) == EVENT_COLUMN_NAMES
    assert 0.08 <= again.height / first.height <= 0.12
    assert again["event_id"].n_unique() == again.height
    assert again["event_id"].is_in(first["event_id"].implode()).all()
    assert not any(_problems(again)[name].any() for name in _problems(again))  # corrections are valid values
    joined = again.join(first, on="event_id", suffix="_first")
    assert joined.height == again.height
    changed = joined.select(
        pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_first")) for c in EVENT_COLUMN_NAMES if c != "event_id"])
    ).to_series()
    assert 0.2 <= changed.mean() <= 0.4
    assert (joined["client_ref"] == joined["client_ref_first"]).all()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_dirty_typed_formats_carry_the_bad_values(tmp_path: Path, fmt: str) -> None:
    result = generate(tmp_path, customers=2, employees=2000, months=6, seed=5, dirty=True, fmt=fmt)
    ev = _as_text(result.events[0])
    problems = _problems(ev)
    assert all(problems[name].any() for name in problems)
    assert result.events[1].suffix == f".{fmt}"
