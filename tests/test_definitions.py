"""The merged code location that ``dg dev`` / ``dagster dev`` load: loadable, and shaped as documented."""

from __future__ import annotations

import dagster as dg

from pipeline.definitions import defs


def test_the_code_location_loads() -> None:
    dg.Definitions.validate_loadable(defs)


def test_jobs_sensors_schedules_and_their_default_status() -> None:
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {
        "ingest_job",
        "monthly_release_job",
        "release_request_job",
        "quarterly_release_job",
        "retention_job",
    } <= jobs
    schedules = {s.name: s for s in defs.schedules or []}
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(schedules) == {"monthly_release_schedule", "retention_schedule"}
    assert set(sensors) == {
        "landing_folder_sensor",
        "release_request_sensor",
        "release_request_status_sensor",
        "release_customers_sensor",
        "release_months_sensor",
    }
    running = dg.DefaultScheduleStatus.RUNNING
    assert all(s.default_status == running for s in schedules.values())  # type: ignore[union-attr]
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())  # type: ignore[union-attr]


def test_lineage_and_partitions() -> None:
    graph = defs.resolve_asset_graph()
    raw, release, published = (dg.AssetKey(k) for k in ("raw_events", "customer_month_release", "published_store"))
    assert raw in graph.get(release).parent_keys and release in graph.get(published).parent_keys
    partitions = graph.get(release).partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    # both dimensions are registered from the raw store (no hard-coded start month)
    assert all(isinstance(d.partitions_def, dg.DynamicPartitionsDefinition) for d in partitions.partitions_defs)
    checks = {key.name for key in graph.get(release).check_keys}
    assert checks == {"published_cells_meet_threshold", "ledger_within_cap", "published_has_no_identifier_column"}


def test_writers_pools_and_the_per_customer_release() -> None:
    """Raw-store writers share one pool; the published store has its own; releases are limited per customer."""
    from pipeline.instance import CUSTOMER_RUN_TAG, DAGSTER_YAML, PUBLISHED_POOL

    for key in ("raw_events", "quarantine"):
        assert defs.resolve_assets_def(key).op.pool == "duckdb_writer", key
    assert defs.resolve_assets_def("published_store").op.pool == PUBLISHED_POOL
    # no global pool on the release: one run per customer at a time is the instance's run tag limit
    assert defs.resolve_assets_def("customer_month_release").op.pool is None
    assert CUSTOMER_RUN_TAG in DAGSTER_YAML and "applyLimitPerUniqueValue: true" in DAGSTER_YAML
