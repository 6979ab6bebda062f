"""The file is read several times, never materialised: passes must agree, and file order must hold."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import polars as pl
import pytest
from ingest_helpers import event, events, query, store_snapshot, write_csv

import pipeline.ingest.load as load
from pipeline.ingest import ingest_files
from pipeline.settings import Settings

CHANGED = "the file changed while it was being ingested: deliver it again"


def _between_passes(monkeypatch: pytest.MonkeyPatch, change) -> None:
    """Run ``change(path)`` after the counting pass, before the ids pass (inside the transaction)."""
    original = load._assign_employee_ids

    def patched(*args):
        change(plan_path[0])
        return original(*args)

    plan_path: list[Path] = []
    original_plan = load.plan_stage

    def plan_stage(source, unknown=None, part="", **kwargs):
        plan_path.append(source.path)
        return original_plan(source, unknown, part, **kwargs)

    monkeypatch.setattr(load, "plan_stage", plan_stage)
    monkeypatch.setattr(load, "_assign_employee_ids", patched)


def test_row_appended_between_passes_refuses_the_file(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_files(settings, [write_csv(drop / "a.csv", events(5))])
    before = store_snapshot(settings)

    def append(path: Path) -> None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(",".join(event(77, client_ref="LATE-COMER").values()) + "\n")

    _between_passes(monkeypatch, append)
    rows = [event(i, client_ref=f"NEW-{i}") for i in range(3, 13)] + [event(99, who5_raw="99")]
    reports, refused = ingest_files(settings, [write_csv(drop / "b.csv", rows)])
    assert reports == [] and [str(r) for r in refused] == [f"b.csv: refused, nothing stored: {CHANGED}"]
    assert store_snapshot(settings) == before


def _rewrite_valid_row_as_bad(path: Path) -> None:
    """Same size, same mtime: a valid row turns bad (who5_raw 12 -> 99)."""
    st = path.stat()
    data = path.read_bytes()
    assert b",12,4," in data
    path.write_bytes(data.replace(b",12,4,", b",99,4,", 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b",12,4,", b",99,4,"),  # out of range
        (b",50,12,", b",51,12,"),  # another valid value
        (b",50,12,", b",5.5,12,"),  # not an integer
        (b",50,12,", b",40000,12,"),  # too big for the stored type
        (b"DEPT-FINANCE", b" " * 12),  # a required value turned blank, same size
        (b"DEPT-FINANCE", b"X" * 300),  # longer than any contract value
        (b"EVT-000003", b"EVT-000099"),  # another event
    ],
    ids=["out of range", "valid value", "not an integer", "too big", "blank", "too long", "other event_id"],
)
def test_a_clean_file_changed_between_reads_is_caught_by_its_ctime(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch, old: bytes, new: bytes
) -> None:
    """A clean first pass lets the load skip the rule mask; any write meanwhile moves the ctime,
    which no program can set back, even with size and mtime forged."""

    def change(path: Path) -> None:
        st = path.stat()
        data = path.read_bytes()
        assert old in data
        path.write_bytes(data.replace(old, new, 1))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert path.stat().st_mtime_ns == st.st_mtime_ns

    _between_passes(monkeypatch, change)
    reports, refused = ingest_files(settings, [write_csv(drop / "c.csv", events(20))])
    assert reports == [] and [r.problem for r in refused] == [CHANGED]
    assert query(settings, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM pseudonyms), "
                 "(SELECT count(*) FROM deliveries)") == [(0, 0, 0)]  # fmt: skip


def _blind_file_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a file system whose times say nothing: only the rows themselves can give a change away."""
    monkeypatch.setattr(load, "_file_state", lambda path: (0, 0, 0, 0))


def test_a_redelivery_overlapping_stored_events_is_loaded(settings: Settings, drop: Path) -> None:
    """A re-delivery overlapping stored events (identical rows are kept, not rewritten) is still loaded."""
    ingest_files(settings, [write_csv(drop / "a.csv", events(10))])
    rows = events(15)  # 10 identical to the stored ones, 5 new
    rows[3] = event(3, who5_raw="20")  # one corrected
    reports, refused = ingest_files(settings, [write_csv(drop / "b.csv", rows)])
    assert refused == []
    r = reports[0]
    assert (r.accepted, r.duplicate, r.replaced) == (6, 9, 1)


def test_a_file_with_bad_rows_changed_unseen_is_caught_by_the_row_counts(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With bad rows the mask runs again, and the valid rows loaded no longer match the first pass's count."""
    _blind_file_state(monkeypatch)
    _between_passes(monkeypatch, _rewrite_valid_row_as_bad)
    reports, refused = ingest_files(settings, [write_csv(drop / "c.csv", events(20) + [event(50, who5_raw="77")])])
    assert reports == [] and [r.problem for r in refused] == [CHANGED]
    assert query(settings, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine), "
                 "(SELECT count(*) FROM deliveries)") == [(0, 0, 0)]  # fmt: skip


@pytest.mark.no_seed
def test_a_headcount_file_changed_unseen_is_caught(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headcount files are always loaded through the rule mask (they are small)."""
    from ingest_helpers import headcount_row

    _blind_file_state(monkeypatch)
    seen: list[Path] = []
    original_plan, original_load = load.plan_stage, load._load_headcount

    def plan_stage(source, unknown=None, part="", **kwargs):
        seen.append(source.path)
        return original_plan(source, unknown, part, **kwargs)

    def load_headcount(*args):
        data = seen[0].read_bytes()
        assert b",40," in data
        seen[0].write_bytes(data.replace(b",40,", b",-9,", 1))
        return original_load(*args)

    monkeypatch.setattr(load, "plan_stage", plan_stage)
    monkeypatch.setattr(load, "_load_headcount", load_headcount)
    rows = [headcount_row(department=f"D{i}") for i in range(5)]
    reports, refused = ingest_files(settings, [write_csv(drop / "h.csv", rows)])
    assert reports == [] and [r.problem for r in refused] == [CHANGED]
    assert query(settings, "SELECT count(*) FROM headcount") == [(0,)]


def test_unchanged_file_is_loaded_with_the_check_in_place(settings: Settings, drop: Path) -> None:
    """The check does not refuse a good file: counts of every pass agree, bad and duplicate rows included."""
    rows = events(30) + [event(4, who5_raw="3"), event(31, who5_raw="99")]
    reports, refused = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert refused == []
    r = reports[0]
    assert (r.rows_total, r.accepted, r.quarantined, r.duplicate) == (32, 30, 1, 1)


def _big_frame(n: int) -> pl.DataFrame:
    return (
        pl.DataFrame(event(0))
        .select(pl.all().repeat_by(n).explode())
        .with_columns(
            (pl.lit("EVT-") + pl.int_range(n).cast(pl.Utf8)).alias("event_id"),
            (pl.lit("C-") + (pl.int_range(n) % 5000).cast(pl.Utf8)).alias("client_ref"),
        )
    )


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_last_occurrence_wins_across_a_large_parallel_read(settings: Settings, drop: Path, fmt: str) -> None:
    """Duplicates far apart in a multi-MB file (read by several threads): file order decides, not read order."""
    n = 300_000
    i = pl.int_range(n)
    frame = _big_frame(n).with_columns(
        pl.when(i == 250_000).then(pl.lit("EVT-10"))
        .when(i == 290_000).then(pl.lit("EVT-250001")).otherwise(pl.col("event_id")).alias("event_id"),
        pl.when(i == 250_000).then(pl.lit("21")).when(i == 290_000).then(pl.lit("3"))
        .when(i == 299_000).then(pl.lit("77")).otherwise(pl.col("who5_raw")).alias("who5_raw"),
    )  # fmt: skip
    path = drop / f"big.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path, row_group_size=10_000)
    reports, refused = ingest_files(settings, [path])
    assert refused == []
    r = reports[0]
    assert (r.rows_total, r.accepted, r.quarantined, r.duplicate) == (n, n - 3, 1, 2)
    assert query(settings, "SELECT event_id, who5_raw FROM events WHERE event_id IN ('EVT-10', 'EVT-250001') "
                 "ORDER BY 1") == [("EVT-10", 21), ("EVT-250001", 3)]  # fmt: skip
    assert query(settings, "SELECT row_number FROM quarantine") == [(299_001,)]


@pytest.mark.slow
def test_parquet_row_numbers_follow_file_order(settings: Settings, drop: Path) -> None:
    n = 300_000
    bad = [3, 123_457, 299_998]  # 1-based
    frame = _big_frame(n).with_columns(
        pl.when(pl.int_range(n).is_in([b - 1 for b in bad])).then(pl.lit("-1")).otherwise(pl.col("duration_min"))
        .alias("duration_min")
    )  # fmt: skip
    path = drop / "big.parquet"
    frame.write_parquet(path, row_group_size=7_000)
    reports, _ = ingest_files(settings, [path])
    assert reports[0].quarantined == 3
    assert query(settings, "SELECT row_number FROM quarantine ORDER BY 1") == [(b,) for b in bad]


def test_stored_event_repeated_in_file_last_occurrence_decides(settings: Settings, drop: Path) -> None:
    """A file whose first copy of a stored event differs but whose last copy is identical changes nothing."""
    ingest_files(settings, [write_csv(drop / "a.csv", events(3))])
    before = query(settings, "SELECT * FROM events ORDER BY event_id")
    rows = [event(1, who5_raw="3"), event(7, client_ref="NEW-PERSON"), event(1), event(7, client_ref="NEW-PERSON")]
    reports, refused = ingest_files(settings, [write_csv(drop / "b.csv", rows)])
    assert refused == []
    r = reports[0]
    assert (r.rows_total, r.accepted, r.duplicate, r.replaced) == (4, 1, 3, 0)
    assert query(settings, "SELECT * FROM events WHERE event_id <> 'EVT-000007' ORDER BY event_id") == before
    assert query(settings, "SELECT count(*) FROM pseudonyms") == [(4,)]  # 3 people of a.csv + NEW-PERSON, once
    assert query(settings, "SELECT count(*), max(delivery_id) FROM deliveries") == [(2, 2)]


def test_an_error_in_a_later_pass_is_refused_without_the_database_message(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB messages can quote a line of the file or a key: a later pass's error never passes one on."""
    ingest_files(settings, [write_csv(drop / "a.csv", events(5))])
    before = store_snapshot(settings)

    def failing(*args):
        raise duckdb.ConstraintException('Duplicate key "client_ref: CLIENTREF-0003-SECRET" violates a constraint')

    monkeypatch.setattr(load, "_assign_employee_ids", failing)
    reports, refused = ingest_files(settings, [write_csv(drop / "b.csv", events(9, start=20))])
    assert reports == [] and len(refused) == 1
    text = str(refused[0])
    assert text.startswith("b.csv: refused, nothing stored: could not be loaded (ConstraintException")
    assert "SECRET" not in text and "CLIENTREF" not in text
    assert store_snapshot(settings) == before


def test_a_person_seen_only_in_superseded_copies_gets_no_pseudonym(settings: Settings, drop: Path) -> None:
    """Last occurrence wins; a client whose only row was superseded leaves no pseudonym behind."""
    rows = [event(1, client_ref="ONLY-IN-THE-FIRST-COPY"), event(2), event(1, client_ref="KEPT-CLIENT")]
    (report,), refused = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert not refused and (report.accepted, report.duplicate) == (2, 1)
    assert query(settings, "SELECT count(*) FROM pseudonyms") == [(2,)]
    assert query(settings, "SELECT count(*) FROM pseudonyms WHERE employee NOT IN (SELECT employee FROM events)") == [
        (0,)
    ]
