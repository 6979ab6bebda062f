"""Dagster: release asset (idempotent materialization, blocking checks), schedule, sensors, requests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
from release_helpers import CUSTOMERS, MONTHS, published, raw_ledger, squeeze_budget

from pipeline.definitions import build_defs
from pipeline.defs.assets.releases import customer_month_release
from pipeline.defs.checks import IDENTIFIER_CHECK, LEDGER_CHECK, THRESHOLD_CHECK
from pipeline.defs.resources import RawStoreResource
from pipeline.defs.schedules import monthly_release_schedule
from pipeline.defs.sensors import release_customers_sensor, release_request_sensor, release_request_status_sensor
from pipeline.releases.lifecycle import run_release
from pipeline.settings import Settings
from pipeline.shards import shard_connection
from privacy.budget import release_cost
from privacy.policy import DEFAULT_POLICY
from stores.control import control_connection, list_release_requests, request_release

C = CUSTOMERS[0]
CELLS = "SELECT dimension, group_value, metric, value, ci_low, ci_high, suppressed FROM release_cells ORDER BY 1, 2, 3"
AGGREGATE_KEYS = {
    "status",
    "release_version",
    "rho_spent",
    "cells",
    "suppressed_cells",
    "visible_cells",
    "policy_version",
}


@pytest.fixture
def instance(tmp_path: Path):
    """A persistent (on-disk) temporary instance: dynamic partitions survive between materializations."""
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as inst:
        inst.add_dynamic_partitions("customers", list(CUSTOMERS))
        # months are registered by the ingest (or release_months_sensor); 2024-03 has no headcount
        inst.add_dynamic_partitions("months", ["2024-03-01", *(f"{m}-01" for m in MONTHS)])
        yield inst


def _materialize(instance: dg.DagsterInstance, settings: Settings, month: str, customer: str = C, **kw):
    return dg.materialize(
        [customer_month_release],
        partition_key=dg.MultiPartitionKey({"customer": customer, "month": f"{month}-01"}),
        instance=instance,
        resources={"raw_store": RawStoreResource(home=str(settings.home))},
        **kw,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [mat] = result.asset_materializations_for_node(RELEASE_NODE)
    return {k: v.value for k, v in mat.metadata.items()}


RELEASE_NODE = "customer_month_release"


def test_materializing_twice_serves_the_stored_release(rsettings: Settings, instance: dg.DagsterInstance) -> None:
    first = _materialize(instance, rsettings, "2025-03")
    assert first.success
    meta = _metadata(first)
    assert set(meta) == AGGREGATE_KEYS  # aggregate facts only, no cell value
    assert meta["status"] == "published"
    assert meta["rho_spent"] == pytest.approx(release_cost(DEFAULT_POLICY, "2025-03").rho)
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks == {THRESHOLD_CHECK: True, LEDGER_CHECK: True, IDENTIFIER_CHECK: True}
    cells = published(rsettings, CELLS)

    again = _materialize(instance, rsettings, "2025-03")  # a re-execution / backfill of the same partition
    assert again.success
    meta = _metadata(again)
    assert meta["status"] == "served_stored" and meta["rho_spent"] == 0.0
    assert published(rsettings, CELLS) == cells
    ledger = raw_ledger(rsettings)
    assert len(ledger) == 1 and ledger[0][5].startswith("dagster:")


def test_a_below_threshold_cell_is_never_published_and_fails_the_run(
    rsettings: Settings, instance: dg.DagsterInstance
) -> None:
    assert _materialize(instance, rsettings, "2025-04").success
    with shard_connection(rsettings, CUSTOMERS[0]) as con:  # tamper with the stored draw: a small group made visible
        con.execute(
            "UPDATE release_draw_cells SET suppressed = false, status = 'published', value = 3, ci_low = 0, ci_high = 6, "
            "reason = NULL WHERE rowid = (SELECT min(rowid) FROM release_draw_cells WHERE metric = 'engaged_employees')"
        )
    result = _materialize(instance, rsettings, "2025-04", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.event_specific_data.error  # type: ignore[union-attr]
    cause = error.cause or error
    assert cause.cls_name == "PublishRefused" and "threshold check" in cause.message
    # The new file was refused before the swap: the violating cell never became visible.
    visible = "SELECT count(*) FROM release_cells WHERE NOT suppressed AND metric = 'engaged_employees' AND value = 3"
    assert published(rsettings, visible)[0][0] == 0


def test_over_budget_partition_fails_and_spends_nothing(rsettings: Settings, instance: dg.DagsterInstance) -> None:
    assert _materialize(instance, rsettings, "2025-01").success
    squeeze_budget(rsettings, C, spent=release_cost(DEFAULT_POLICY, "2025-01").rho)
    result = _materialize(instance, rsettings, "2025-02", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "rolling 12-month cap" in failure.event_specific_data.error.message  # type: ignore[union-attr]
    assert len(raw_ledger(rsettings)) == 1
    assert published(rsettings, "SELECT count(*) FROM releases WHERE period = '2025-02'")[0][0] == 0


def test_month_without_data_spends_nothing(rsettings: Settings, instance: dg.DagsterInstance) -> None:
    result = _materialize(instance, rsettings, "2024-03")
    # not materialized (the partition stays "missing", never green): an observation says why
    assert result.success and result.asset_materializations_for_node(RELEASE_NODE) == []
    [observation] = result.asset_observations_for_node(RELEASE_NODE)
    assert observation.metadata["status"].value == "no_data" and observation.metadata["rho_spent"].value == 0.0
    assert instance.get_materialized_partitions(dg.AssetKey(RELEASE_NODE)) == set()
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {
        THRESHOLD_CHECK,
        LEDGER_CHECK,
        IDENTIFIER_CHECK,
    }
    assert not rsettings.raw_path.exists() or raw_ledger(rsettings) == []


def test_monthly_schedule_requests_last_complete_month_for_every_customer(instance: dg.DagsterInstance) -> None:
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2025, 7, 2, 6, 0),
        repository_def=build_defs().get_repository_def(),
    )
    requests = list(monthly_release_schedule.evaluate_tick(context).run_requests or [])
    assert sorted(r.partition_key for r in requests) == sorted(
        str(dg.MultiPartitionKey({"customer": c, "month": "2025-06-01"})) for c in CUSTOMERS
    )


def test_customer_sensor_registers_customers_from_the_raw_store(rsettings: Settings, tmp_path: Path) -> None:
    (tmp_path / "fresh").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "fresh")) as inst:
        context = dg.build_sensor_context(
            instance=inst, resources={"raw_store": RawStoreResource(home=str(rsettings.home))}
        )
        result = release_customers_sensor(context)
        assert isinstance(result, dg.SensorResult)
        [request] = result.dynamic_partitions_requests
        assert sorted(request.partition_keys) == list(CUSTOMERS)
        inst.add_dynamic_partitions("customers", list(request.partition_keys))
        assert isinstance(release_customers_sensor(context), dg.SkipReason)


def test_customer_sensor_deletes_the_partition_of_a_removed_customer(rsettings: Settings, tmp_path: Path) -> None:
    from pipeline.shards import remove_customer

    (tmp_path / "fresh").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "fresh")) as inst:
        inst.add_dynamic_partitions("customers", list(CUSTOMERS))
        remove_customer(rsettings, CUSTOMERS[0], removed_by="test")
        context = dg.build_sensor_context(
            instance=inst, resources={"raw_store": RawStoreResource(home=str(rsettings.home))}
        )
        result = release_customers_sensor(context)
        assert isinstance(result, dg.SensorResult)
        [request] = result.dynamic_partitions_requests
        assert isinstance(request, dg.DeleteDynamicPartitionsRequest)
        assert list(request.partition_keys) == [CUSTOMERS[0]]
        inst.delete_dynamic_partition("customers", CUSTOMERS[0])
        assert isinstance(release_customers_sensor(context), dg.SkipReason)  # the others stay
        assert sorted(inst.get_dynamic_partitions("customers")) == sorted(CUSTOMERS[1:])


def _execute(
    instance: dg.DagsterInstance, resources: dict[str, object], sensor_result: dg.SensorResult
) -> list[dg.ExecuteInProcessResult]:
    """Do what the daemon does with a sensor result: add partitions, launch each run (in-process here)."""
    for request in sensor_result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys or []))
    defs = build_defs(resources)
    return [
        defs.resolve_job_def(r.job_name).execute_in_process(
            instance=instance, partition_key=r.partition_key, tags=r.tags, run_config=r.run_config, raise_on_error=False
        )
        for r in sensor_result.run_requests or []
    ]


def test_release_request_sensor_launches_the_request_and_records_its_status(
    rsettings: Settings, instance: dg.DagsterInstance
) -> None:
    with control_connection(rsettings) as con:
        rid = request_release(con, C, ["2025-01", "2025-02"], "officer-ann")
    resources = {"raw_store": RawStoreResource(home=str(rsettings.home))}
    context = dg.build_sensor_context(instance=instance, resources=resources)
    launched = release_request_sensor(context)
    assert isinstance(launched, dg.SensorResult)
    # one run of the release asset per requested month, tagged with the request
    assert [r.run_key for r in launched.run_requests or []] == [
        f"request:{rid}:{dg.MultiPartitionKey({'customer': C, 'month': f'{m}-01'})}" for m in ("2025-01", "2025-02")
    ]
    assert isinstance(release_request_sensor(context), dg.SkipReason)  # claimed: not launched twice

    results = _execute(instance, resources, launched)
    assert all(r.success for r in results)
    assert isinstance(release_request_status_sensor(context), dg.SkipReason)  # it records, it launches nothing
    with control_connection(rsettings, read_only=True) as con:
        row = list_release_requests(con, C).row(0, named=True)
    assert row["status"] == "done" and row["message"] == "2 published"
    assert {(r[1], r[2]) for r in raw_ledger(rsettings)} == {("2025-01", "release"), ("2025-02", "release")}
    assert all("officer-ann" in r[5] for r in raw_ledger(rsettings))
    mats = [m for r in results for m in r.asset_materializations_for_node(RELEASE_NODE)]
    assert len(mats) == 2 and all(set(m.metadata) == AGGREGATE_KEYS for m in mats)

    # a second request for the same periods is served from the store and spends nothing
    with control_connection(rsettings) as con:
        request_release(con, C, ["2025-01"], "officer-ann")
    again = release_request_sensor(context)
    assert isinstance(again, dg.SensorResult)
    assert all(r.success for r in _execute(instance, resources, again))
    assert len(raw_ledger(rsettings)) == 2


def test_a_requested_release_shows_its_blocking_checks_for_the_partition(
    rsettings: Settings, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requested the way the dashboard does it; the checks are evaluated and recorded for that partition."""
    from dashboards import control as dashboard_control
    from stores.principal import Principal

    monkeypatch.setenv("WELLBEING_HOME", str(rsettings.home))
    dashboard_control.request_release(Principal("po", "privacy_officer"), C, ["2025-03"])
    resources = {"raw_store": RawStoreResource(home=str(rsettings.home))}
    launched = release_request_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(launched, dg.SensorResult)
    [result] = _execute(instance, resources, launched)
    assert result.success
    partition = str(dg.MultiPartitionKey({"customer": C, "month": "2025-03-01"}))
    for check in (THRESHOLD_CHECK, LEDGER_CHECK, IDENTIFIER_CHECK):
        key = dg.AssetCheckKey(dg.AssetKey(RELEASE_NODE), check)
        [record] = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
        evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
        assert evaluation.passed and evaluation.partition == partition and record.run_id == result.run_id
    assert partition in instance.get_materialized_partitions(dg.AssetKey(RELEASE_NODE))


def test_request_over_budget_is_marked_refused(rsettings: Settings, instance: dg.DagsterInstance) -> None:
    run_release(rsettings, C, "2025-01", requested_by="t")
    squeeze_budget(rsettings, C, spent=release_cost(DEFAULT_POLICY, "2025-01").rho)
    with control_connection(rsettings) as con:
        request_release(con, C, ["2025-02", "2025-03"], "officer-ann")
    resources = {"raw_store": RawStoreResource(home=str(rsettings.home))}
    launched = release_request_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(launched, dg.SensorResult)
    results = _execute(instance, resources, launched)
    assert not all(r.success for r in results)
    with control_connection(rsettings, read_only=True) as con:
        row = list_release_requests(con, C).row(0, named=True)
    assert row["status"] == "refused" and "cap" in row["message"]
    assert len(raw_ledger(rsettings)) == 1


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(build_defs())


def test_lineage_raw_events_release_published_store() -> None:
    graph = build_defs().resolve_asset_graph()
    release, published_store = dg.AssetKey(RELEASE_NODE), dg.AssetKey("published_store")
    assert dg.AssetKey("raw_events") in graph.get(release).parent_keys
    assert release in graph.get(published_store).parent_keys
