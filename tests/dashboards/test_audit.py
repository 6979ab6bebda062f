"""Access audit: append-only hash chain (tampering detected), concurrent writers, batching, the officers' page."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest
from dash_helpers import app_as

from stores import audit


def _fill(path: Path, n: int = 6) -> None:
    audit.append(path, [audit.AccessEvent("page_view", f"user{i}", "hr", "acme", page="hr_overview") for i in range(n)])


@pytest.mark.parametrize(
    ("tamper", "bad_seq"),
    [
        ("UPDATE access_log SET customer_id = 'globex' WHERE seq = 3", 3),
        ("DELETE FROM access_log WHERE seq = 4", 5),
        ("UPDATE access_log SET occurred_at = occurred_at + INTERVAL 1 HOUR WHERE seq = 2", 2),
        ("UPDATE access_log SET seq = CASE seq WHEN 5 THEN 6 ELSE 5 END WHERE seq IN (5, 6)", 5),
    ],
)
def test_editing_deleting_or_reordering_rows_breaks_the_chain(tmp_path: Path, tamper: str, bad_seq: int) -> None:
    path = tmp_path / "audit.duckdb"
    _fill(path)
    assert audit.verify(path) == audit.VerifyResult(True, 6)
    con = duckdb.connect(str(path))
    con.execute(tamper)
    con.close()
    result = audit.verify(path)
    assert not result.ok
    assert result.first_bad_seq == bad_seq, result


def test_a_recomputed_row_hash_still_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    _fill(path)
    con = duckdb.connect(str(path))
    seq, at, *values, prev, _ = con.execute("SELECT * FROM access_log WHERE seq = 3").fetchone()
    values[0] = "download"
    forged = audit.row_hash(prev, seq, at, tuple(values))
    con.execute("UPDATE access_log SET event = 'download', row_hash = ? WHERE seq = 3", [forged])
    con.close()
    result = audit.verify(path)
    assert not result.ok and result.first_bad_seq == 4


def test_concurrent_writers_keep_one_unbroken_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                audit.append(path, [audit.AccessEvent("page_view", f"u{n}", "provider", page=f"p{i}")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert audit.verify(path) == audit.VerifyResult(True, 80)


def test_batch_writer_buffers_and_flushes(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    writer = audit.BatchWriter(path, interval=60)
    for i in range(5):
        writer.record(audit.AccessEvent("page_view", "privacy", "privacy_officer", page=f"p{i}"))
    assert not path.exists() or audit.read(path).is_empty()
    assert writer.flush() == 5
    assert audit.read(path)["page"].to_list() == [f"p{i}" for i in range(5)]


def test_unknown_events_and_long_details_are_refused_or_cut() -> None:
    with pytest.raises(ValueError):
        audit.AccessEvent("viewed_value")
    assert len(audit.AccessEvent("download", detail="x" * 1000).detail or "") == audit.MAX_DETAIL


def test_privacy_officer_reads_the_access_log_and_hr_cannot_reach_it(dash_home) -> None:
    at = app_as("hr_acme")
    at.run()
    with pytest.raises(ValueError, match="Could not find"):
        at.switch_page("views/privacy_access.py")
    officer = app_as("privacy")
    officer.run()
    officer.switch_page("views/privacy_access.py").run()
    assert not officer.exception, officer.exception
    assert [t.value for t in officer.title] == ["Access log"]
    assert any("Log intact" in s.value for s in officer.success)
    table = officer.dataframe[0].value
    assert {"Viewed page"} <= set(table["Event"])
    assert "hr_acme" in set(table["Account"])
    # no figure from the published store appears in the log
    assert "4321" not in table.to_csv() and "4,321" not in table.to_csv()


def test_download_wrapper_records_the_download(dash_home, monkeypatch) -> None:
    from dashboards import audit_hooks
    from stores.principal import Principal

    captured: dict = {}
    monkeypatch.setattr(
        audit_hooks.st, "download_button", lambda label, data, **k: captured.update(k, data=data) or False
    )
    audit_hooks.download_button(
        "Download (CSV)",
        lambda: b"a,b\n1,2\n",
        "wellbeing_acme.csv",
        principal=Principal("hr_acme", "hr", "acme"),
        page="hr_overview",
        mime="text/csv",
    )
    audit_hooks.writer().flush()
    assert audit.read(dash_home / "audit.duckdb").is_empty()  # a render that offers a file records nothing
    assert captured["on_click"] == "ignore"  # a click does not re-run the page
    assert captured["data"]() == b"a,b\n1,2\n"  # what Streamlit calls when the user clicks
    audit_hooks.writer().flush()
    rows = (
        audit.read(dash_home / "audit.duckdb")
        .select("event", "username", "role", "customer_id", "page", "detail")
        .rows()
    )
    assert rows == [("download", "hr_acme", "hr", "acme", "hr_overview", "wellbeing_acme.csv")]
    with pytest.raises(TypeError):
        audit_hooks.download_button(
            "x", b"", "f.csv", principal=Principal("privacy", "privacy_officer"), page="p", on_click=lambda: None
        )
    with pytest.raises(TypeError):  # the file is made on the click, never on every render
        audit_hooks.download_button("x", b"", "f.csv", principal=Principal("privacy", "privacy_officer"), page="p")
