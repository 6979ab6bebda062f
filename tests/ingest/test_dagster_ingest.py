"""Dagster ingest definitions: loadable, materialized in-process against real encrypted stores, sensor, schedule."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import dagster as dg
from ingest_helpers import event, events, headcount_row, query, seed_headcount, write_csv

from pipeline.definitions import defs
from pipeline.defs.assets.ingest import landing_files, quarantine, raw_events
from pipeline.defs.jobs import ingest_job, retention_job
from pipeline.defs.partitions import customers_partitions
from pipeline.defs.resources import LandingZone, RawStoreResource
from pipeline.defs.schedules import retention_schedule
from pipeline.defs.sensors import landing_folder_sensor
from pipeline.settings import Settings

SECRETS = ("CLIENTREF", "EVT-0", "SITE-LEEDS", "DEPT-FINANCE", "ROLE-ANALYST")


def _resources(settings: Settings) -> dict[str, object]:
    return {
        "raw_store": RawStoreResource(home=str(settings.home)),
        "landing": LandingZone(path=str(settings.landing_dir), settle_seconds=0),
    }


def _metadata_text(result: dg.ExecuteInProcessResult) -> str:
    parts = []
    for node in ("landing_files", "raw_events", "quarantine"):
        for mat in result.asset_materializations_for_node(node):
            parts.extend(f"{k}={v.value!r}" for k, v in mat.metadata.items())
    for ev in result.get_asset_check_evaluations():
        parts.extend(f"{k}={v.value!r}" for k, v in ev.metadata.items())
    for ev in result.all_events:
        if ev.message:
            parts.append(ev.message)
    return "\n".join(parts)


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"ingest_job", "retention_job"}
    assert raw_events.op.pool == "duckdb_writer" and quarantine.op.pool == "duckdb_writer"


def test_materialize_ingests_landing_files(settings: Settings) -> None:
    settings.ensure_dirs()
    rows = events(30) + [event(3), event(40, who5_raw="31"), event(41, customer_id="globex")]
    seed_headcount(settings, [("globex", "SITE-LEEDS", "DEPT-FINANCE", "ROLE-ANALYST")])
    write_csv(settings.landing_dir / "events.csv", rows)
    write_csv(settings.landing_dir / "headcount.csv", [headcount_row(department=d) for d in "ABC"])
    write_csv(settings.landing_dir / "bad.csv", [dict(events(1)[0], **{"alice.example@corp.com": "x"})])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([landing_files, raw_events, quarantine], instance=instance, resources=_resources(settings))
    assert result.success
    raw_meta = result.asset_materializations_for_node("raw_events")[0].metadata
    assert raw_meta["rows_accepted"].value == 34  # 31 events + 3 headcount rows
    assert raw_meta["rows_quarantined"].value == 1 and raw_meta["rows_duplicate"].value == 1
    assert raw_meta["refused_file_names"].value == ["bad.csv"]
    q_meta = result.asset_materializations_for_node("quarantine")[0].metadata
    assert q_meta["quarantined_rows"].value == 1
    assert q_meta["entries_by_reason"].value == {"who5_raw out of range 0-25": 1}
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "no_refused_files" and not check.passed
    text = _metadata_text(result) + "\n".join(r.user_message for r in instance.all_logs(result.run_id))
    for secret in (*SECRETS, "alice", "corp.com"):  # the e-mail column name is not echoed in Dagster either
        assert secret not in text, secret
    assert "column 13: a*** (22 characters, looks like an e-mail address)" in text
    assert set(instance.get_dynamic_partitions(customers_partitions.name)) == {"acme", "globex"}
    assert query(settings, "SELECT count(*) FROM events") == [(31,)]
    assert not any(settings.archive_dir.glob("*")), "ingested exports hold client_ref in clear: deleted by default"
    assert sorted(p.name for p in settings.landing_dir.iterdir()) == ["bad.csv"]


def test_sensor_cursor_round_trip_and_run(settings: Settings) -> None:
    settings.ensure_dirs()
    a = write_csv(settings.landing_dir / "a.csv", events(3))
    write_csv(settings.landing_dir / "b.csv", events(3, start=10))
    (settings.landing_dir / ".partial.csv").write_text("event_id\n", encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()
    resources = _resources(settings)

    first = landing_folder_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(first, dg.SensorResult)
    keys = [r.run_key for r in first.run_requests or []]
    assert keys == [f"a.csv:{a.stat().st_mtime}", f"b.csv:{(settings.landing_dir / 'b.csv').stat().st_mtime}"]
    assert set(json.loads(first.cursor or "{}")) == {"a.csv", "b.csv"}

    again = landing_folder_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources))
    assert again.run_requests == []
    assert again.cursor == first.cursor

    os.utime(a, (a.stat().st_atime, a.stat().st_mtime - 10))
    changed = landing_folder_sensor(
        dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
    )
    (request,) = changed.run_requests or []
    assert request.run_key == f"a.csv:{a.stat().st_mtime}"

    # the request's run config runs the ingest job for exactly that file
    job = dg.Definitions(assets=[landing_files, raw_events, quarantine], jobs=[ingest_job], resources=resources)
    result = job.resolve_job_def("ingest_job").execute_in_process(run_config=request.run_config, instance=instance)
    assert result.success
    assert query(settings, "SELECT count(*) FROM events") == [(3,)]
    assert not (settings.landing_dir / "a.csv").exists() and (settings.landing_dir / "b.csv").exists()
    after = landing_folder_sensor(
        dg.build_sensor_context(instance=instance, cursor=changed.cursor, resources=resources)
    )
    assert after.run_requests == [] and "a.csv" not in json.loads(after.cursor or "{}")


def test_sensor_waits_for_files_to_settle(settings: Settings) -> None:
    settings.ensure_dirs()
    write_csv(settings.landing_dir / "a.csv", events(1))
    resources = {"landing": LandingZone(path=str(settings.landing_dir), settle_seconds=3600)}
    result = landing_folder_sensor(
        dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources=resources)
    )
    assert result.run_requests == [] and json.loads(result.cursor or "{}") == {}


def test_retention_schedule_tick_and_job(settings: Settings) -> None:
    assert retention_schedule.cron_schedule == "0 3 1 * *"
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2025, 7, 1, 3, 0, tzinfo=UTC))
    data = retention_schedule.evaluate_tick(ctx)
    assert len(data.run_requests or []) == 1 and retention_schedule.job_name == "retention_job"
    from pipeline.ingest import ingest_files

    settings.ensure_dirs()
    rows = [event(1, occurred_on="2001-01-01"), event(2, occurred_on=datetime.now(UTC).date().isoformat())]
    ingest_files(settings, [write_csv(settings.home / "d.csv", rows)])
    job = dg.Definitions(jobs=[retention_job], resources=_resources(settings)).resolve_job_def("retention_job")
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    assert query(settings, "SELECT event_id FROM events") == [("EVT-000002",)]
