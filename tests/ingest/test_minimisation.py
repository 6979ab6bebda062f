"""Nothing outside the contract is stored: headcount structure, plain JSON values, character rules,
offending column names never echoed, and bad input never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ingest_helpers import event, events, query, seed_headcount, store_snapshot, write_csv, write_jsonl

from pipeline.cli import main
from pipeline.ingest import ingest_files
from pipeline.settings import Settings

DISCLOSURE = "Jane Doe disclosed self-harm risk"


def _quarantine(settings: Settings) -> list[tuple[int, str, str]]:
    return query(settings, "SELECT row_number, column_name, reason FROM quarantine ORDER BY ALL")


def _stored_text(settings: Settings) -> str:
    return repr(store_snapshot(settings))


@pytest.mark.parametrize("column", ["site", "department", "role"])
def test_label_not_in_the_headcount_is_quarantined_and_never_stored(
    settings: Settings, drop: Path, column: str
) -> None:
    rows = events(3)
    rows[1] = event(1, **{column: DISCLOSURE})
    reports, refused = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert refused == [] and (reports[0].accepted, reports[0].quarantined) == (2, 1)
    assert _quarantine(settings) == [
        (2, column, f"{column} is not in the customer's headcount file (value not stored): use the headcount's names")
    ]
    assert DISCLOSURE not in _stored_text(settings)


def test_customer_without_headcount_is_quarantined(settings: Settings, drop: Path) -> None:
    rows = [event(0), event(1, customer_id="initech")]
    reports, _ = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert (reports[0].accepted, reports[0].quarantined) == (1, 1)
    (row,) = _quarantine(settings)
    assert row[:2] == (2, "customer_id") and "no headcount file" in row[2]
    assert query(settings, "SELECT count(*) FROM events WHERE customer_id = 'initech'") == [(0,)]


def test_label_of_another_customer_is_not_enough(settings: Settings, drop: Path) -> None:
    seed_headcount(settings, [("globex", "SITE-YORK", "DEPT-LEGAL", None)])
    rows = [event(0, customer_id="globex", site="SITE-YORK", department="DEPT-FINANCE", role="")]
    reports, _ = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert reports[0].quarantined == 1 and [r[1] for r in _quarantine(settings)] == ["department"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("event_id", "jane@corp.com", "event_id has characters outside the contract"),
        ("client_ref", "Jane Doe", "client_ref has characters outside the contract"),
        ("customer_id", "acme; drop", "customer_id has characters outside the contract"),
        ("event_id", "E" * 65, "event_id longer than 64 characters"),
        ("department", "=HYPERLINK(x)", "department has characters outside the contract"),
    ],
)
def test_character_and_length_rule_of_free_form_fields(
    settings: Settings, drop: Path, column: str, value: str, reason: str
) -> None:
    rows = events(2) + [event(2, **{column: value})]
    reports, _ = ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    assert (reports[0].accepted, reports[0].quarantined) == (2, 1)
    reasons = [r for r in _quarantine(settings) if r[1] == column]
    assert len(reasons) == 1 and reasons[0][0] == 3 and reasons[0][2].startswith(reason)
    assert value not in _stored_text(settings)


def test_nested_json_value_is_refused_and_not_stored(settings: Settings, drop: Path) -> None:
    rows = events(3)
    rows[2] = dict(rows[2], department={"name": "Ops", "manager": "boss@corp.com"})
    path = write_jsonl(drop / "nested.jsonl", rows)
    reports, refused = ingest_files(settings, [path])
    assert reports == [] and len(refused) == 1
    assert "line 3, column department: a nested object or array" in str(refused[0])
    assert "boss@corp.com" not in str(refused[0]) and "Ops" not in str(refused[0])
    for table in ("events", "quarantine", "deliveries"):
        assert query(settings, f"SELECT count(*) FROM {table}") == [(0,)]


def test_json_array_value_is_refused(settings: Settings, drop: Path) -> None:
    path = drop / "arr.jsonl"
    path.write_text(json.dumps(dict(event(0), site=["a", "b"])) + "\n", encoding="utf-8")
    _, refused = ingest_files(settings, [path])
    assert len(refused) == 1 and "line 1, column site" in str(refused[0])


def test_email_column_name_is_not_echoed(settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [dict(r, **{"jane.doe@corp.com": "x"}) for r in events(2)]
    path = write_csv(drop / "mail.csv", rows)
    assert main(["ingest", str(path)]) == 2
    err = capsys.readouterr().err
    assert "jane" not in err and "corp.com" not in err
    assert "column 13: j*** (17 characters, looks like an e-mail address)" in err


def test_missing_file_in_a_list_does_not_stop_the_others(
    settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_csv(drop / "a.csv", events(2))
    b = write_csv(drop / "b.csv", events(2, start=10))
    assert main(["ingest", str(a), str(drop / "does-not-exist.csv"), str(b)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "does-not-exist.csv: refused, nothing stored: file not found" in captured.err
    assert "a.csv: events" in captured.out and "b.csv: events" in captured.out
    assert query(settings, "SELECT count(*) FROM events") == [(4,)]


def test_first_line_longer_than_128_kib_is_refused_cleanly(
    settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = drop / "long.csv"
    long.write_text("event_id," + "x" * (200 * 1024) + "\n1,2\n", encoding="utf-8")
    quoted = drop / "quoted.csv"  # a single quoted field over the csv module's limit, within the line limit
    quoted.write_text('"' + "y" * (127 * 1024) + '"\n', encoding="utf-8")
    good = write_csv(drop / "good.csv", events(1))
    assert main(["ingest", str(long), str(quoted), str(good)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "field larger" not in captured.err
    assert "long.csv: refused, nothing stored: the first line is longer than 128 KiB" in captured.err
    assert "quoted.csv: refused" in captured.err
    assert "good.csv: events" in captured.out


@pytest.mark.no_seed
def test_headcount_in_the_same_batch_is_ingested_first(settings: Settings, drop: Path) -> None:
    from ingest_helpers import headcount_row

    ev = write_csv(drop / "events.csv", events(3))
    hc = write_csv(drop / "headcount.csv", [headcount_row(role="ROLE-ANALYST")])
    reports, refused = ingest_files(settings, [ev, hc])
    assert refused == [] and [r.kind for r in reports] == ["headcount", "events"]
    assert (reports[1].accepted, reports[1].quarantined) == (3, 0)


def test_many_invalid_values_fall_back_to_the_row_rule_and_many_unknown_labels_refuse(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.ingest.rules as rules

    monkeypatch.setattr(rules, "MAX_LISTED_VALUES", 2)
    rows = events(3) + [event(10 + i, client_ref=f"bad ref {i}") for i in range(3)]
    reports, _ = ingest_files(settings, [write_csv(drop / "refs.csv", rows)])
    assert (reports[0].accepted, reports[0].quarantined) == (3, 3)
    rows = events(3, start=20) + [event(30 + i, department=f"Unknown {i}") for i in range(3)]
    _, refused = ingest_files(settings, [write_csv(drop / "labels.csv", rows)])
    assert len(refused) == 1 and "more than 2 distinct department values" in str(refused[0])
    assert "Unknown" not in str(refused[0])


def test_a_fifo_or_folder_is_refused_without_blocking(settings: Settings, drop: Path) -> None:
    import os

    fifo = drop / "pipe.csv"
    os.mkfifo(fifo)
    folder = drop / "folder.csv"
    folder.mkdir()
    good = write_csv(drop / "good.csv", events(1))
    reports, refused = ingest_files(settings, [fifo, folder, good])
    assert [r.path.name for r in refused] == ["pipe.csv", "folder.csv"] and reports[0].accepted == 1
