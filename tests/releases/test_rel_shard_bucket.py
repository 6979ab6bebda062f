"""Shards in object storage, against an S3-compatible server (moto's, on loopback).

Each "pod" is the shared home with an empty ``shards/`` folder (on Kubernetes a pod-local
``emptyDir``): whatever a run needs comes from the bucket, and whatever it committed must be
in the bucket before anything of it is published.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from release_helpers import CUSTOMERS, published, run_cli

from pipeline import shards
from pipeline.releases.lifecycle import release_with, run_all_due, run_release
from pipeline.settings import SHARD_BUCKET_ENV, Settings, SettingsError
from pipeline.shard_storage import ShardConflict, ShardStoreError

A, B = CUSTOMERS
boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket on the server; the S3 variables a pod would get; returns its s3:// URL."""
    name = f"wb-{uuid.uuid4().hex[:12]}"
    for var, value in {
        "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    _client(s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/prod"


def _client(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )


def _objects(endpoint: str, url: str) -> dict[str, bytes]:
    name, _, prefix = url.removeprefix("s3://").partition("/")
    client = _client(endpoint)
    listed = client.list_objects_v2(Bucket=name, Prefix=prefix + "/").get("Contents", [])
    return {
        o["Key"].removeprefix(prefix + "/"): client.get_object(Bucket=name, Key=o["Key"])["Body"].read() for o in listed
    }


def _new_pod(settings: Settings) -> None:
    """A new run pod: the shared volume and key folder as they are, an empty scratch shards folder."""
    shutil.rmtree(settings.shards_dir, ignore_errors=True)


@pytest.fixture
def moved(rsettings: Settings, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ingested two-customer home moved into the bucket (``wellbeing shards upload``), then a new pod."""
    monkeypatch.setenv(SHARD_BUCKET_ENV, bucket)
    settings = Settings.from_env()
    assert len(shards.upload_local(settings)) == 2
    _new_pod(settings)
    return settings


def _periods(settings: Settings, customer: str) -> list[tuple]:
    if not settings.published_path.exists():
        return []
    return published(settings, "SELECT period FROM releases WHERE customer_id = ? ORDER BY 1", [customer])


def _ledger_rows(settings: Settings, customer: str, period: str) -> int:
    return sum(1 for c, p, _ in shards.ledger(settings, customer) if (c, p) == (customer, period))


def test_the_bucket_holds_only_encrypted_files_named_by_random_ids(moved: Settings, s3_endpoint: str) -> None:
    objects = _objects(s3_endpoint, moved.shard_bucket or "")
    ids = {s.shard_id for s in shards.live_shards(moved)}
    assert set(objects) == {"catalog.duckdb", *(f"{i}.duckdb" for i in ids)}
    for data in objects.values():
        for clear in (A.encode(), B.encode(), b"CREATE TABLE", b"events"):
            assert clear not in data  # names of customers and the schema are inside the encryption
    assert not any(name.endswith(".key") for name in objects)  # key shares never go to the bucket


def test_each_pod_releases_from_the_bucket_and_a_rerun_serves_the_stored_draw(moved: Settings) -> None:
    first = run_release(moved, A, "2025-03", requested_by="pod-1")
    assert first.status == "published"
    _new_pod(moved)
    again = run_release(moved, A, "2025-03", requested_by="pod-2")
    assert again.status == "served_stored" and again.release_id == first.release_id
    _new_pod(moved)
    assert _ledger_rows(moved, A, "2025-03") == 1  # spent once, in the bucket's copy
    rows = published(moved, "SELECT count(*) FROM releases WHERE customer_id = ? AND period = ?", [A, "2025-03"])
    assert rows == [(1,)]


def test_all_due_in_workers_uploads_every_customer(moved: Settings) -> None:
    outcomes = run_all_due(moved, "scheduler", today=date(2025, 4, 10), workers=2)
    assert {o.customer_id for o in outcomes if o.status == "published"} == {A, B}
    _new_pod(moved)
    again = run_all_due(moved, "scheduler", today=date(2025, 4, 10))
    assert again == []  # nothing due: every draw and ledger row reached the bucket
    for customer in (A, B):
        assert _ledger_rows(moved, customer, "2025-03") == 1


def test_a_second_writer_fails_and_publishes_nothing(moved: Settings, tmp_path: Path) -> None:
    """Pod 2 read the shard before pod 1 uploaded a release: pod 2's upload is refused, its draw never published."""
    shard, delivered = shards.shard_and_delivery(moved, A)
    stale = shards.open_shard(moved, shard)  # pod 2 has fetched the shard ...
    try:
        pod1 = Settings(home=tmp_path / "pod1", key_dir=moved.keys_dir, shard_bucket=moved.shard_bucket)
        assert run_release(pod1, A, "2025-02", requested_by="pod-1").status == "published"  # ... pod 1 uploads
        before = _periods(moved, A)
        with pytest.raises(ShardConflict, match="changed by another run"):
            release_with(stale, moved, A, "2025-04", requested_by="pod-2", shard=shard, delivered=delivered)
    finally:
        stale.close()
    assert _periods(moved, A) == before
    _new_pod(moved)
    assert _ledger_rows(moved, A, "2025-04") == 0  # pod 2's draw stayed in its scratch folder
    assert _ledger_rows(moved, A, "2025-02") == 1
    assert run_release(moved, A, "2025-04", requested_by="retry").status == "published"  # drawn once, now


def test_a_failed_runs_local_writes_do_not_survive(moved: Settings) -> None:
    shard = shards.find_shard(moved, A)
    con = shards.open_shard(moved, shard)
    try:
        con.execute("DELETE FROM events")  # committed locally, never uploaded (the run then failed)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    con = shards.open_shard(moved, shard, read_only=True)  # the next open fetches the bucket's copy
    try:
        (n,) = con.execute("SELECT count(*) FROM events").fetchone()  # type: ignore[misc]
    finally:
        con.close()
    assert n > 0


def test_removing_a_customer_deletes_its_object_and_leaves_the_other(moved: Settings, s3_endpoint: str) -> None:
    gone = shards.find_shard(moved, A)
    kept = shards.find_shard(moved, B)
    shards.remove_customer(moved, A, removed_by="privacy officer")
    objects = _objects(s3_endpoint, moved.shard_bucket or "")
    assert f"{gone.shard_id}.duckdb" not in objects and f"{kept.shard_id}.duckdb" in objects
    assert not moved.customer_key_file(gone.shard_id).exists()
    _new_pod(moved)
    assert shards.customers(moved) == [B]
    assert run_release(moved, B, "2025-03", requested_by="t").status == "published"


def test_ingest_in_a_pod_uploads_new_customers_and_the_catalog(
    bucket: str, wb_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    from pipeline.ingest import ingest_files
    from pipeline.synthetic import generate

    monkeypatch.setenv(SHARD_BUCKET_ENV, bucket)
    settings = Settings.from_env()
    files = generate(tmp_path / "gen", customers=2, employees=300, months=2, seed=5, start="2025-01")
    reports, refused = ingest_files(settings, [*files.headcounts, *files.events])
    assert reports and not refused
    _new_pod(settings)
    assert shards.customers(settings) == sorted(files.customers)
    info = {c.customer_id: c.events for c in shards.customer_list(settings)}
    assert all(n and n > 0 for n in info.values())
    assert len(_objects(s3_endpoint, bucket)) == 3  # the catalog and two shards


@pytest.mark.parametrize("url", ["/data/shards", "s3://", "s3:///prod", "s3://wellbeing trial/prod", "http://x"])
def test_bad_bucket_settings_are_refused_at_the_edge(wb_home: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv(SHARD_BUCKET_ENV, url)
    with pytest.raises(SettingsError, match="s3://bucket/prefix"):
        Settings.from_env()
    if url == "s3:///prod":
        proc = run_cli("customer", "list", env_home=wb_home)
        assert proc.returncode == 2 and "WELLBEING_SHARD_BUCKET" in proc.stderr and "Traceback" not in proc.stderr


def test_an_unreachable_bucket_is_a_clear_error(rsettings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHARD_BUCKET_ENV, "s3://nowhere/prod")
    for var, value in {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ALLOW_HTTP": "true",  # nothing listens there
                       "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    settings = Settings.from_env()
    with pytest.raises(ShardStoreError, match="cannot download the raw store's catalog: .*error sending request"):
        shards.live_shards(settings)
    proc = run_cli("release", "--customer", A, "--period", "2025-03", env_home=rsettings.home)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "WELLBEING_SHARD_BUCKET" in proc.stderr and "nothing was changed" in proc.stderr


def test_a_bucket_that_does_not_exist_is_a_setting_error(
    wb_home: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARD_BUCKET_ENV, "s3://no-such-bucket-here/prod")
    proc = run_cli("customer", "list", env_home=wb_home)
    assert proc.returncode == 2 and "cannot be listed" in proc.stderr and "Traceback" not in proc.stderr


def test_a_local_installation_not_moved_yet_is_refused_not_split(
    rsettings: Settings, bucket: str, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    """Bucket set, its catalog missing, this folder has one: no command writes half of it to the bucket."""
    monkeypatch.setenv(SHARD_BUCKET_ENV, bucket)
    for command in (("customer", "list"), ("release", "--customer", A, "--period", "2025-03"), ("budget",)):
        proc = run_cli(*command, env_home=rsettings.home)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "wellbeing shards upload" in proc.stderr and "Traceback" not in proc.stderr
    assert _objects(s3_endpoint, bucket) == {}  # nothing went to the bucket
    proc = run_cli("shards", "upload", env_home=rsettings.home, check_rc=0)
    assert "2 customer shard(s)" in proc.stdout
    proc = run_cli("shards", "upload", env_home=rsettings.home)
    assert proc.returncode == 2 and "already holds a catalog" in proc.stderr


def test_upload_refuses_a_bucket_that_already_has_a_catalog(moved: Settings) -> None:
    with pytest.raises(shards.RawStoreError, match="already holds a catalog"):
        shards.upload_local(moved)


def test_a_pods_scratch_copy_is_reused_when_current(moved: Settings) -> None:
    shard = shards.find_shard(moved, B)
    shards.open_shard(moved, shard, read_only=True).close()
    path = moved.shard_path(shard.shard_id)
    inode = path.stat().st_ino
    shards.open_shard(moved, shard, read_only=True).close()
    assert path.stat().st_ino == inode  # not downloaded again (conditional GET: not modified)


def test_the_dagster_release_asset_runs_against_the_bucket(moved: Settings, tmp_path: Path) -> None:
    """What a run pod does: materialize one customer-month partition; the next pod's run serves it."""
    import dagster as dg

    from pipeline.defs.assets.releases import customer_month_release
    from pipeline.defs.resources import RawStoreResource

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions("customers", list(CUSTOMERS))
        instance.add_dynamic_partitions("months", ["2025-03-01"])
        statuses = []
        for _pod in range(2):
            _new_pod(moved)
            result = dg.materialize(
                [customer_month_release],
                partition_key=dg.MultiPartitionKey({"customer": B, "month": "2025-03-01"}),
                instance=instance,
                resources={"raw_store": RawStoreResource(home=str(moved.home))},
            )
            assert result.success
            [mat] = result.asset_materializations_for_node("customer_month_release")
            statuses.append(mat.metadata["status"].value)
            assert all(check.passed for check in result.get_asset_check_evaluations())
    assert statuses == ["published", "served_stored"]
    _new_pod(moved)
    assert _ledger_rows(moved, B, "2025-03") == 1


def test_a_same_size_write_right_after_a_fetch_is_uploaded(moved: Settings, s3_endpoint: str) -> None:
    """Not inferred from the clock tick: a matched copy carries a modification time no write can give."""
    from pipeline.shard_storage import fetch, upload

    path = moved.catalog_path
    fetch(moved, path, name="catalog")
    with open(path, "r+b") as f:  # at once, same size (as a small commit that fits free blocks)
        f.seek(path.stat().st_size - 1)
        last = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([last[0] ^ 1]))
    upload(moved, path, name="catalog")
    assert _objects(s3_endpoint, moved.shard_bucket or "")["catalog.duckdb"] == path.read_bytes()


def test_a_mistyped_prefix_is_refused_not_a_new_empty_store(moved: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh pod (no local catalog) on the wrong prefix: releases and key shares say an installation exists."""
    assert run_release(moved, A, "2025-03", requested_by="t").status == "published"
    wrong = (moved.shard_bucket or "") + "-typo"
    monkeypatch.setenv(SHARD_BUCKET_ENV, wrong)
    proc = run_cli("customer", "list", env_home=moved.home)
    assert proc.returncode == 2 and "holds no catalog" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("release", "--all-due", env_home=moved.home)
    assert proc.returncode == 2 and "holds no catalog" in proc.stderr


def test_a_stale_unchanged_copy_is_never_published_from(moved: Settings, tmp_path: Path) -> None:
    """Served from a copy another pod has since replaced: the HEAD check refuses before the part is written."""
    from pipeline.releases.publish import part_path, write_part

    shard = shards.find_shard(moved, A)
    stale = shards.open_shard(moved, shard)
    try:
        pod1 = Settings(home=tmp_path / "pod1", key_dir=moved.keys_dir, shard_bucket=moved.shard_bucket)
        assert run_release(pod1, A, "2025-02", requested_by="pod-1").status == "published"
        with pytest.raises(ShardConflict):
            write_part(moved, stale, shard)
    finally:
        stale.close()
    assert not part_path(moved, shard.shard_id).exists()


def test_each_process_has_its_own_copies_removed_when_it_ends(moved: Settings) -> None:
    """Two processes never share a local copy (one could replace a file the other has open)."""
    import subprocess
    import sys

    from pipeline.shard_storage import PROCESS_DIR_PREFIX

    assert len(shards.customers(moved)) == 2  # this process fetched the catalog into its own folder
    ours = moved.shards_dir
    assert ours.name.startswith(f"{PROCESS_DIR_PREFIX}{os.getpid()}-") and ours.parent == moved.local_shards_dir
    ended = moved.local_shards_dir / f"{PROCESS_DIR_PREFIX}{os.getpid()}-feedbeef"  # same pid, another container
    ended.mkdir()
    (ended / ".alive").write_bytes(b"")  # its lock is free: the process has ended
    (ended / "x.duckdb").write_bytes(b"encrypted")
    code = (
        "import sys; from pipeline.settings import Settings; from pipeline import shards; s = Settings.from_env(); "
        "print(s.shards_dir); print(len(shards.customers(s)), flush=True); sys.stdin.read()"
    )
    env = {**os.environ, "WELLBEING_HOME": str(moved.home)}
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdin is not None
    child_dir, count = Path(child.stdout.readline().strip()), child.stdout.readline().strip()
    assert child_dir != ours and count == "2" and child_dir.exists()
    assert not ended.exists() and ours.exists()  # the ended one went, the live ones stay
    from pipeline.shard_storage import _process_dir

    third = _process_dir(tmp := moved.local_shards_dir, 1)  # a third process's start-up cleanup
    assert child_dir.exists() and ours.exists() and third.parent == tmp  # a live process's folder is never taken
    child.stdin.close()
    assert child.wait(timeout=60) == 0
    assert not child_dir.exists()  # deleted at exit


def test_a_moved_installation_refuses_to_run_without_the_bucket(
    moved: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `shards upload` the local files are gone and a marker names the bucket: no stale second store."""
    assert not list(moved.local_shards_dir.glob("*.duckdb"))
    monkeypatch.delenv(SHARD_BUCKET_ENV)
    proc = run_cli("release", "--customer", A, "--period", "2025-03", env_home=moved.home)
    assert proc.returncode == 2 and "were moved into" in proc.stderr and moved.shard_bucket in proc.stderr
    assert run_cli("customer", "list", env_home=moved.home).returncode == 2
