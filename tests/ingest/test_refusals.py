"""File-level refusals: nothing from a refused file is stored, and the message names columns, not values."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from ingest_helpers import WRITERS, event, events, query, store_snapshot, write_csv, write_parquet

from pipeline.ingest import FileRefused, ingest_files
from pipeline.settings import Settings


def _assert_nothing_stored(settings: Settings) -> None:
    for table in ("events", "quarantine", "deliveries", "headcount"):
        seeded = " WHERE delivery_id <> 0" if table == "headcount" else ""  # the conftest's structure
        assert query(settings, f"SELECT count(*) FROM {table}{seeded}") == [(0,)], table


def _refused_only(settings: Settings, path: Path) -> FileRefused:
    reports, refused = ingest_files(settings, [path])
    assert reports == []
    assert len(refused) == 1 and refused[0].path == path
    _assert_nothing_stored(settings)
    text = str(refused[0])
    assert path.name in text
    for secret in ("CLIENTREF", "DEPT-FINANCE", "EVT-0", "SITE-LEEDS"):
        assert secret not in text  # no cell value in an error message
    return refused[0]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_extra_column_refused_and_nothing_stored(settings: Settings, drop: Path, fmt: str) -> None:
    rows = [dict(r, email="someone@example.org", notes="free text") for r in events(3)]
    refusal = _refused_only(settings, WRITERS[fmt](drop / "extra", rows))
    where = "key " if fmt == "jsonl" else "column 13: "
    assert f"{where}e*** (5 characters)" in str(refusal) and "n*** (5 characters)" in str(refusal)
    assert "email" not in str(refusal) and "'notes'" not in str(refusal)  # offending names are not echoed
    assert "Remove these columns; the contract forbids" in str(refusal)
    assert "someone@example.org" not in str(refusal)


def test_extra_key_in_one_jsonl_record_only_is_refused(settings: Settings, drop: Path) -> None:
    rows = events(50)
    rows[37]["date_of_birth"] = "1980-01-01"
    refusal = _refused_only(settings, WRITERS["jsonl"](drop / "late_extra", rows))
    assert "key d*** (13 characters)" in str(refusal) and "date_of_birth" not in str(refusal)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_missing_required_column_refused(settings: Settings, drop: Path, fmt: str) -> None:
    rows = [{k: v for k, v in r.items() if k not in ("department", "service")} for r in events(3)]
    refusal = _refused_only(settings, WRITERS[fmt](drop / "missing", rows))
    assert "missing required columns: department, service" in str(refusal)


def test_missing_optional_columns_are_fine(settings: Settings, drop: Path) -> None:
    rows = [{k: v for k, v in r.items() if k not in ("topic", "who5_raw", "site")} for r in events(3)]
    reports, refused = ingest_files(settings, [write_csv(drop / "lean.csv", rows)])
    assert refused == [] and reports[0].accepted == 3
    assert query(settings, "SELECT count(*) FROM events WHERE topic IS NULL AND who5_raw IS NULL") == [(3,)]


def test_corrupt_parquet_refused(settings: Settings, drop: Path) -> None:
    good = write_parquet(drop / "good.parquet", events(200))
    data = good.read_bytes()
    bad = drop / "corrupt.parquet"
    bad.write_bytes(data[: len(data) // 2])
    refusal = _refused_only(settings, bad)
    assert "corrupt or truncated" in str(refusal)


def test_garbage_in_parquet_data_pages_refused(settings: Settings, drop: Path) -> None:
    good = write_parquet(drop / "good.parquet", events(2000))
    data = bytearray(good.read_bytes())
    for i in range(100, len(data) // 2):  # keep footer, scramble the data pages
        data[i] = (data[i] * 7 + 13) % 256
    bad = drop / "scrambled.parquet"
    bad.write_bytes(bytes(data))
    _refused_only(settings, bad)


def test_non_utf8_csv_refused_with_line_number(settings: Settings, drop: Path) -> None:
    path = write_csv(drop / "latin1.csv", events(5))
    text = path.read_text(encoding="utf-8").replace("DEPT-FINANCE", "DEPT-FINANCÉ", 3)
    path.write_bytes(text.encode("latin-1"))  # É as one latin-1 byte: invalid UTF-8
    refusal = _refused_only(settings, path)
    assert "not valid UTF-8" in str(refusal) and "line 2" in str(refusal)


def test_non_utf8_header_refused(settings: Settings, drop: Path) -> None:
    path = drop / "header.csv"
    path.write_bytes("event_id,client_ref,d\xe9partement\n".encode("latin-1"))
    assert "not valid UTF-8" in str(_refused_only(settings, path))


def test_empty_file_refused(settings: Settings, drop: Path) -> None:
    path = drop / "empty.csv"
    path.write_bytes(b"")
    assert "empty" in str(_refused_only(settings, path))


def test_header_only_file_refused(settings: Settings, drop: Path) -> None:
    path = drop / "header_only.csv"
    path.write_text(",".join(event(0)) + "\n", encoding="utf-8")
    assert "no data rows" in str(_refused_only(settings, path))


def test_unrecognised_header_refused(settings: Settings, drop: Path) -> None:
    path = write_csv(drop / "other.csv", [{"name": "Alice", "phone": "0123"}])
    refusal = _refused_only(settings, path)
    assert "unrecognised header" in str(refusal) and "Alice" not in str(refusal)


def test_duplicate_column_refused(settings: Settings, drop: Path) -> None:
    cols = list(event(0)) + ["topic"]
    path = drop / "dupe.csv"
    path.write_text(",".join(cols) + "\n" + ",".join(list(event(0).values()) + ["stress"]) + "\n", encoding="utf-8")
    assert "more than once (column 12: topic; column 13: topic)" in str(_refused_only(settings, path))


def test_row_with_wrong_field_count_refuses_csv(settings: Settings, drop: Path) -> None:
    path = write_csv(drop / "ragged.csv", events(4))
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] += ",EXTRA-VALUE"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refusal = _refused_only(settings, path)
    assert "different number of fields" in str(refusal) and "line 4" in str(refusal)
    assert "EXTRA-VALUE" not in str(refusal)


def test_malformed_jsonl_refused(settings: Settings, drop: Path) -> None:
    path = WRITERS["jsonl"](drop / "broken", events(3))
    path.write_text(path.read_text(encoding="utf-8") + '{"event_id": "EVT-9", \n', encoding="utf-8")
    assert "JSON Lines" in str(_refused_only(settings, path))


def test_unsupported_suffix_refused(settings: Settings, drop: Path) -> None:
    path = drop / "export.xlsx"
    path.write_bytes(b"PK\x03\x04")
    assert "unsupported file type" in str(_refused_only(settings, path))


def test_parquet_timestamp_for_date_refused(settings: Settings, drop: Path) -> None:
    rows = events(3)
    frame = pl.DataFrame(rows).with_columns(pl.col("occurred_on").str.to_datetime("%Y-%m-%d"))
    path = drop / "ts.parquet"
    frame.write_parquet(path)
    assert "occurred_on has type TIMESTAMP" in str(_refused_only(settings, path))


def test_refused_file_does_not_stop_the_others(settings: Settings, drop: Path) -> None:
    bad = WRITERS["csv"](drop / "bad", [dict(r, name="Alice") for r in events(2)])
    good = WRITERS["csv"](drop / "good", events(3))
    reports, refused = ingest_files(settings, [bad, good])
    assert [r.path for r in reports] == [good] and [r.path for r in refused] == [bad]
    snap = store_snapshot(settings)
    assert len(snap["events"]) == 3 and len(snap["deliveries"]) == 1


def test_non_utf8_jsonl_refused(settings: Settings, drop: Path) -> None:
    path = WRITERS["jsonl"](drop / "latin", events(3))
    text = path.read_text(encoding="utf-8").replace("DEPT-FINANCE", "DEPT-FINANC\u00c9")
    path.write_bytes(text.replace("\\u00c9", "\u00c9").encode("latin-1"))
    refusal = _refused_only(settings, path)
    assert "UTF-8" in str(refusal) or "JSON Lines" in str(refusal)


def test_csv_with_bom_and_crlf_is_accepted(settings: Settings, drop: Path) -> None:
    path = write_csv(drop / "win.csv", events(3))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    reports, refused = ingest_files(settings, [path])
    assert refused == [] and reports[0].accepted == 3
    assert query(settings, "SELECT max(topic) FROM events") == [("stress",)]
