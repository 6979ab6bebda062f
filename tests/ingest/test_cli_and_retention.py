"""``wellbeing ingest`` / ``wellbeing purge``, landing-file handling and retention."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from ingest_helpers import event, events, query, write_csv

from pipeline.cli import main
from pipeline.ingest import ingest_files
from pipeline.retention import purge_older_than, retention_cutoff
from pipeline.settings import Settings


def test_cli_ingest_prints_summary(settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = events(5) + [event(1), event(7, who5_raw="40")]
    assert main(["ingest", str(write_csv(drop / "d.csv", rows))]) == 0
    out = capsys.readouterr().out
    assert "d.csv: events (csv), 7 rows: 5 accepted, 1 quarantined, 1 duplicate, 0 replaced" in out
    assert "CLIENTREF" not in out


def test_cli_ingest_refusal_exit_2_other_files_loaded(
    settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_csv(drop / "bad.csv", [dict(r, phone="0123456") for r in events(2)])
    good = write_csv(drop / "good.csv", events(2))
    assert main(["ingest", str(bad), str(good)]) == 2
    captured = capsys.readouterr()
    assert "refused: bad.csv" in captured.err and "column 13: p*** (5 characters)" in captured.err
    assert "phone" not in captured.err and "0123456" not in captured.err  # neither the column name nor a value
    assert "good.csv: events" in captured.out
    assert query(settings, "SELECT count(*) FROM events") == [(2,)]


def test_retention_cutoff() -> None:
    assert retention_cutoff(24, date(2025, 6, 15)) == date(2023, 6, 1)
    assert retention_cutoff(1, date(2025, 1, 31)) == date(2024, 12, 1)
    assert retention_cutoff(12, date(2025, 12, 1)) == date(2024, 12, 1)
    with pytest.raises(ValueError):
        retention_cutoff(0, date(2025, 1, 1))


def test_purge_deletes_events_and_quarantine_past_window(settings: Settings, drop: Path) -> None:
    rows = [event(1, occurred_on="2023-05-31"), event(2, occurred_on="2023-06-01"), event(3, occurred_on="2025-06-01")]
    ingest_files(settings, [write_csv(drop / "d.csv", rows + [event(4, who5_raw="77")])])
    report = purge_older_than(settings, 24, today=date(2025, 6, 15))
    assert (report.cutoff, report.events_deleted, report.quarantine_deleted) == (date(2023, 6, 1), 1, 0)
    assert query(settings, "SELECT event_id FROM events ORDER BY 1") == [("EVT-000002",), ("EVT-000003",)]
    far = purge_older_than(settings, 1, today=date(2100, 1, 1))  # quarantine rows are dated by quarantined_at
    assert (far.events_deleted, far.quarantine_deleted) == (2, 1)
    assert query(settings, "SELECT count(*) FROM quarantine") == [(0,)]


def test_purge_deletes_pseudonyms_no_event_refers_to(settings: Settings, drop: Path) -> None:
    """Storage limitation: a person whose every event is past the window loses the pseudonym too."""
    rows = [
        event(1, client_ref="GONE", occurred_on="2023-01-10"),
        event(2, client_ref="GONE", occurred_on="2023-02-10"),
        event(3, client_ref="STAYS", occurred_on="2023-01-10"),
        event(4, client_ref="STAYS", occurred_on="2025-06-01"),
    ]
    ingest_files(settings, [write_csv(drop / "d.csv", rows)])
    ids = dict(query(settings, "SELECT event_id, employee FROM events"))
    report = purge_older_than(settings, 24, today=date(2025, 6, 15))
    assert (report.events_deleted, report.pseudonyms_deleted) == (3, 1)
    assert "1 pseudonyms" in report.summary()
    assert query(settings, "SELECT employee FROM pseudonyms") == [(ids["EVT-000004"],)]
    assert query(settings, "SELECT employee FROM events") == [(ids["EVT-000004"],)]
    # the remaining person keeps the id; the purged one is a new person if they come back
    ingest_files(settings, [write_csv(drop / "e.csv", [event(5, client_ref="STAYS"), event(6, client_ref="GONE")])])
    after = dict(query(settings, "SELECT event_id, employee FROM events"))
    assert after["EVT-000005"] == ids["EVT-000004"]
    assert query(settings, "SELECT count(*), count(DISTINCT pseudonym) FROM pseudonyms") == [(2, 2)]
    assert purge_older_than(settings, 24, today=date(2025, 6, 15)).pseudonyms_deleted == 0


def test_an_id_freed_by_retention_is_never_given_to_another_person(settings: Settings, drop: Path) -> None:
    rows = [
        event(1, client_ref="OLD-A", occurred_on="2023-01-10"),
        event(2, client_ref="OLD-B", occurred_on="2023-02-10"),
    ]
    ingest_files(settings, [write_csv(drop / "f.csv", rows)])
    old_ids = {r[0] for r in query(settings, "SELECT employee FROM pseudonyms")}
    assert purge_older_than(settings, 24, today=date(2025, 6, 15)).pseudonyms_deleted == 2
    ingest_files(settings, [write_csv(drop / "g.csv", [event(3, client_ref="NEW-C", occurred_on="2025-06-01")])])
    (new_id,) = query(settings, "SELECT employee FROM pseudonyms")[0]
    assert new_id == max(old_ids) + 1  # not 1 again, although no stored row holds a higher id


def test_purge_deletes_old_archived_landing_files(settings: Settings) -> None:
    settings.ensure_dirs()
    old = settings.archive_dir / "old.csv"
    new = settings.archive_dir / "new.csv"
    for p in (old, new):
        p.write_text("x", encoding="utf-8")
    stamp = 1_600_000_000  # 2020-09-13
    os.utime(old, (stamp, stamp))
    report = purge_older_than(settings, 24)
    assert report.archive_files_deleted == 1 and not old.exists() and new.exists()


def test_cli_purge(settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingest_files(
        settings,
        [
            write_csv(
                drop / "d.csv", [event(1, occurred_on="2001-01-01"), event(2, occurred_on=date.today().isoformat())]
            )
        ],
    )
    assert main(["purge", "--older-than", "12"]) == 0
    assert "1 events" in capsys.readouterr().out
    assert query(settings, "SELECT event_id FROM events") == [("EVT-000002",)]


@pytest.mark.parametrize("policy", ["archive", "delete", "keep"])
def test_landing_files_after_ingest(wb_home: Path, monkeypatch: pytest.MonkeyPatch, drop: Path, policy: str) -> None:
    monkeypatch.setenv("WELLBEING_LANDING_AFTER_INGEST", policy)
    settings = Settings.from_env()
    settings.ensure_dirs()
    landed = write_csv(settings.landing_dir / "d.csv", events(2))
    refused = write_csv(settings.landing_dir / "r.csv", [dict(events(1)[0], notes="x")])
    outside = write_csv(drop / "o.csv", events(2, start=5))
    reports, refusals = ingest_files(settings, [landed, refused, outside])
    assert len(reports) == 2 and len(refusals) == 1
    assert refused.exists() and outside.exists()  # refused and non-landing files are never moved
    assert landed.exists() == (policy == "keep")
    assert (settings.archive_dir / "d.csv").exists() == (policy == "archive")


def test_landing_files_are_deleted_by_default(settings: Settings) -> None:
    settings.ensure_dirs()
    write_csv(settings.landing_dir / "d.csv", events(2))
    ingest_files(settings, [settings.landing_dir / "d.csv"])
    assert not (settings.landing_dir / "d.csv").exists() and not any(settings.archive_dir.glob("*"))


def test_archive_never_overwrites(monkeypatch: pytest.MonkeyPatch, wb_home: Path) -> None:
    monkeypatch.setenv("WELLBEING_LANDING_AFTER_INGEST", "archive")
    settings = Settings.from_env()
    settings.ensure_dirs()
    for i in range(2):
        write_csv(settings.landing_dir / "d.csv", events(2, start=10 * i))
        ingest_files(settings, [settings.landing_dir / "d.csv"])
    assert len(list(settings.archive_dir.iterdir())) == 2
