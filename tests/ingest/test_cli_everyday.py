"""The everyday commands and the command line's contract: exit codes, no traceback, progress lines."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from ingest_helpers import event, events, seed_headcount, write_csv

import stores.control
from pipeline.cli import main
from pipeline.commands.demo import demo_start_month
from pipeline.ingest import ingest_files
from pipeline.settings import Settings
from stores.csv_safety import neutralise_cell, neutralise_frame


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("wellbeing ") and out.strip().split()[1][0].isdigit()


def test_quarantine_lists_file_row_column_reason_never_the_value(
    settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = events(4) + [event(4, who5_raw="77"), event(5, department="Jane Doe disclosed risk")]
    ingest_files(
        settings, [write_csv(drop / "first.csv", rows), write_csv(drop / "second.csv", [event(9, topic="gossip")])]
    )
    capsys.readouterr()
    assert main(["quarantine"]) == 0
    out = capsys.readouterr().out
    listed = [line.split(None, 3) for line in out.splitlines()]
    assert ["first.csv", "5", "who5_raw", "who5_raw out of range 0-25"] in listed
    assert ["first.csv", "6", "department"] in [row[:3] for row in listed]
    assert "second.csv" in out and "Jane Doe" not in out and "77" not in out.replace("first.csv", "")
    assert main(["quarantine", "--file", "second.csv"]) == 0
    out = capsys.readouterr().out
    assert "second.csv" in out and "first.csv" not in out
    assert main(["quarantine", "--file", "nope.csv"]) == 2
    assert "files with quarantined rows: first.csv, second.csv" in capsys.readouterr().err


def test_unknown_customer_says_so(settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingest_files(settings, [write_csv(drop / "d.csv", events(3))])
    assert main(["release", "--customer", "nobody", "--period", "2025-03"]) == 2
    err = capsys.readouterr().err
    assert "unknown customer 'nobody': known customers: acme" in err and "headcount file" not in err
    assert main(["budget", "--customer", "nobody"]) == 2
    assert "unknown customer 'nobody'" in capsys.readouterr().err


def test_generate_ends_at_the_last_complete_month_by_default(tmp_path: Path) -> None:
    from pipeline.releases.lifecycle import last_complete_month

    out = tmp_path / "gen"
    assert main(["generate", "--out", str(out), "--customers", "1", "--employees", "300", "--months", "24"]) == 0
    frame = pl.read_csv(out / "provider-export.csv", columns=["occurred_on"], schema_overrides={"occurred_on": pl.Date})
    last = frame["occurred_on"].max()
    assert isinstance(last, date) and last.strftime("%Y-%m") <= last_complete_month()  # nothing in the future
    (headcount,) = out.glob("headcount-*.csv")
    months = pl.read_csv(headcount)["as_of"]
    assert (months.min(), months.max()) == (demo_start_month(24), last_complete_month())


def test_users_demo_creates_accounts_for_existing_customers(
    settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_headcount(settings, [("globex", "SITE-X", "DEPT-Y", None)])
    assert main(["users", "demo"]) == 0
    out = capsys.readouterr().out
    assert "hr_acme" in out and "hr_globex" in out and "hr_initech" not in out


def test_busy_control_store_is_exit_4_without_traceback(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "set", "k", "6", "--by", "po"]) == 0
    ingest_files(settings, [write_csv(drop / "d.csv", events(3))])  # a raw store with a customer
    real = stores.control.connect_with_retry
    monkeypatch.setattr(stores.control, "connect_with_retry", lambda f, p, timeout: real(f, p, timeout=0.3))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(settings.control_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        for argv in (["policy", "show"], ["policy", "set", "k", "7"], ["budget"], ["release", "--all-due"]):
            assert main(argv) == 4, argv
            err = capsys.readouterr().err
            assert "is held by another process" in err and "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


def test_unexpected_error_is_exit_1_one_line_and_no_message(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipeline.commands.budget as budget

    def boom(*_: object) -> None:
        raise RuntimeError("row value CLIENTREF-0001-SECRET")

    monkeypatch.setattr(budget, "budget_rows", boom)
    assert main(["budget"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected RuntimeError") and "SECRET" not in err and "Traceback" not in err


def test_progress_output_when_not_a_terminal(
    settings: Settings, drop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = write_csv(drop / "a.csv", events(3)), write_csv(drop / "b.csv", events(2, start=5))
    assert main(["ingest", str(a), str(b)]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[0] == "ingest [1/2] a.csv"
    assert "ingest [1/2] a.csv: checking every row against the data contract" in err
    assert "ingest [2/2] b.csv: loading 2 valid rows of 2" in err
    assert err[-1].startswith("ingest: 2 of 2 done in ")
    assert captured.out.splitlines() == [
        "a.csv: events (csv), 3 rows: 3 accepted, 0 quarantined, 0 duplicate, 0 replaced",
        "b.csv: events (csv), 2 rows: 2 accepted, 0 quarantined, 0 duplicate, 0 replaced",
    ]
    assert "\x1b[" not in captured.err  # no terminal control codes in a log


def test_release_all_due_streams_one_line_per_release(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipeline.releases.lifecycle as lifecycle
    from pipeline.releases.lifecycle import ReleaseOutcome

    settings.raw_path.touch() if not settings.raw_path.exists() else None
    seen_before_return: list[str] = []

    def run_all_due(settings: Settings, who: str, *, on_outcome=None, **_: object) -> list[ReleaseOutcome]:
        outcomes = []
        for period in ("2025-01", "2025-02"):
            o = ReleaseOutcome("published", "acme", period, None, None, None, cells=10, suppressed=2, message="")
            outcomes.append(o)
            on_outcome(o)
            seen_before_return.append(capsys.readouterr().out)  # printed as it finished, not at the end
        return outcomes

    monkeypatch.setattr(lifecycle, "run_all_due", run_all_due)
    assert main(["release", "--all-due"]) == 0
    assert seen_before_return == [
        "acme 2025-01: published (10 cells, 2 suppressed)\n",
        "acme 2025-02: published (10 cells, 2 suppressed)\n",
    ]
    assert capsys.readouterr().out.startswith("2 released, 0 refused for budget")


def test_csv_neutralisation() -> None:
    for value in ("=SUM(A1)", "+1", "-2+3", "@cmd", "\t=x", "\r=x"):
        assert neutralise_cell(value) == "'" + value
    for value in ("Finance", "a=b", "", "Small teams, site X"):
        assert neutralise_cell(value) == value
    frame = pl.DataFrame({"group_value": ['=HYPERLINK("http://x")', "Ops"], "ci_low": [-1.5, 2.0]})
    safe = neutralise_frame(frame)
    assert safe["group_value"].to_list() == ['\'=HYPERLINK("http://x")', "Ops"]
    assert safe["ci_low"].to_list() == [-1.5, 2.0]  # numbers stay numbers


def test_export_csv_neutralises_formula_cells(wb_home: Path, tmp_path: Path) -> None:
    from stores import published

    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.published_path))
    con.execute(published.ddl())
    con.execute("INSERT INTO releases (release_id, customer_id, period) VALUES ('r1', 'acme', '2025-01')")
    con.execute(
        "INSERT INTO release_cells (release_id, customer_id, period, dimension, group_value, metric, value, ci_low, "
        "ci_high, suppressed, status) VALUES ('r1', 'acme', '2025-01', 'department', '=cmd|'' /C calc''!A0', "
        "'engaged_employees', 12, -1.5, 20, false, 'published'), ('r1', 'acme', '2025-01', 'total', 'All', "
        "'engaged_employees', 30, 20, 40, false, 'published')"
    )
    con.close()
    out = tmp_path / "cells.csv"
    assert main(["export", "--customer", "acme", "--format", "csv", "--out", str(out)]) == 0
    text = out.read_text()
    assert "'=cmd|" in text and ",=cmd" not in text and '"=cmd' not in text
    assert main(["export", "--customer", "nobody", "--format", "csv"]) == 2
    assert main(["export", "--customer", "acme", "--format", "csv", "--out", str(tmp_path / "no" / "x.csv")]) == 2


def test_shell_completion_script_completes_commands_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    probe = (
        'COMP_WORDS=(wellbeing release --customer acme --p); COMP_CWORD=4; _wellbeing; echo "${COMPREPLY[@]}"; '
        'COMP_WORDS=(wellbeing qu); COMP_CWORD=1; _wellbeing; echo "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", script + "\n" + probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["--period", "quarantine"]


def test_out_of_memory_is_not_a_refusal_but_one_error_line(
    settings: Settings, drop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipeline.ingest as ingest

    def oom(*_: object, **__: object) -> None:
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block for CLIENTREF-1")

    monkeypatch.setattr(ingest, "ingest_file", oom)
    assert main(["ingest", str(write_csv(drop / "d.csv", events(1)))]) == 1
    err = capsys.readouterr().err
    assert "error: DuckDB ran out of memory" in err and "CLIENTREF" not in err and "refused" not in err


def test_a_reader_that_goes_away_ends_the_command_quietly(settings: Settings, drop: Path) -> None:
    """``wellbeing customer list | head -1``: the closed pipe is not an "unexpected error" line."""
    import os

    from pipeline.keys import KEY_ENV_VARS

    ingest_files(settings, [write_csv(drop / "d.csv", events(3))])
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV_VARS}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())", "customer", "list"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""
