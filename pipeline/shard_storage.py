"""Shards in object storage: each run works on a local copy and uploads it with a conditional write.

Unset (the default), the shards and the catalog live in ``$WELLBEING_HOME/shards`` and every
function here does nothing. With ``WELLBEING_SHARD_BUCKET=s3://bucket/prefix`` (or ``gs://``,
``az://``; credentials from the platform's usual variables or workload identity), the bucket
holds the authoritative copy of each encrypted file (``<shard_id>.duckdb``, ``catalog.duckdb``)
and ``shards/`` is a cache: on Kubernetes a pod-local ``emptyDir``, so each run pod works on
the one shard it needs.

* :func:`fetch` before a file is opened: the local copy becomes the bucket's current version
  (one conditional GET: nothing is downloaded when the copy is current and untouched; a local
  copy changed without being uploaded is replaced, so a failed run's writes never survive).
* :func:`upload` after a commit: ``CHECKPOINT``, then a compare-and-swap PUT (``If-Match`` the
  version fetched; ``If-None-Match: *`` for a new file). A second writer (which Dagster's
  one-run-per-customer limit should make impossible) fails its run with :class:`ShardConflict`
  instead of overwriting the other's draws or ledger rows.
* :func:`delete` when a customer is removed (after its key share was shredded).

Privacy reasons: the bucket holds only DuckDB files encrypted under the master key (catalog) or
a per-customer key (shards); object names are random shard ids, never customer names; the key
shares and the master key never go to the bucket. A customer's published part is written only
after its shard was uploaded (:func:`pipeline.releases.publish.write_part`), so a published
release always has its draw and ledger row in the authoritative copy: a re-run serves that draw
and the budget counts it (invariants 3 and 4). With bucket versioning, older versions of a
removed customer's shard stay unreadable: the key share they need is destroyed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.keys import fsync_path
from pipeline.raw_store import RawStoreError
from pipeline.settings import SHARD_BUCKET_ENV

if TYPE_CHECKING:
    import duckdb

    from pipeline.settings import Settings


class ShardStoreError(RawStoreError):
    """Object storage could not be read or written (names the file, never data); nothing was published."""


class ShardConflict(ShardStoreError):
    """The bucket's copy changed since this process fetched it: this run's changes were not uploaded."""


@cache
def _store(url: str) -> Any:
    """The obstore client of the bucket (credentials from the environment), one per process."""
    from obstore.store import from_url

    options: dict[str, Any] = {"conditional_put": "etag"} if url.startswith("s3://") else {}
    # A shard is one PUT (a conditional write cannot be multipart): allow a large file time to move.
    client: dict[str, Any] = {"timeout": timedelta(hours=1), "connect_timeout": timedelta(seconds=10)}
    if os.environ.get("AWS_ALLOW_HTTP", "").lower() == "true":  # an in-cluster S3-compatible server (MinIO)
        client["allow_http"] = True  # explicit client options replace the ones read from the environment
    options["client_options"] = client
    # A few quick retries, then a clear error (the default waits up to three minutes).
    options["retry_config"] = {"max_retries": 3, "retry_timeout": timedelta(seconds=30)}
    return from_url(url, **options)


@dataclass(frozen=True)
class _Fetched:
    """What the local copy was when it last matched the bucket (sidecar ``<file>.etag``)."""

    e_tag: str
    size: int
    mtime_ns: int

    @staticmethod
    def read(path: Path) -> _Fetched | None:
        try:
            data = json.loads(_sidecar(path).read_text(encoding="ascii"))
            return _Fetched(str(data["e_tag"]), int(data["size"]), int(data["mtime_ns"]))
        except (OSError, ValueError, KeyError):
            return None

    def untouched(self, path: Path) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == (self.size, self.mtime_ns)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".etag")


# The modification time a local copy gets when it matches the bucket. Any later write sets the
# time to "now", which can never equal it: a change is seen even within the file system's clock
# tick and at the same size (a small commit often fits the file's free blocks).
_MATCHED_MTIME_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z


def _remember(path: Path, e_tag: str) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, _MATCHED_MTIME_NS))
    st = path.stat()
    tmp = _sidecar(path).with_name(_sidecar(path).name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"e_tag": e_tag, "size": st.st_size, "mtime_ns": st.st_mtime_ns}), encoding="ascii")
    os.replace(tmp, _sidecar(path))


def _forget(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal"), _sidecar(path)):
        leftover.unlink(missing_ok=True)


def fetch(settings: Settings, path: Path, *, name: str) -> None:
    """Make ``path`` the bucket's current version of the file (no-op without a bucket).

    Not in the bucket: a local copy that came from it is deleted (the customer was removed
    elsewhere); a local file never uploaded (being created by this process) is kept.
    """
    if settings.shard_bucket is None:
        return
    from obstore import get
    from obstore.exceptions import NotFoundError, NotModifiedError

    store = _store(settings.shard_bucket)
    known = _Fetched.read(path)
    current = known is not None and known.untouched(path)
    try:
        result = get(store, path.name, options={"if_none_match": known.e_tag} if current and known else None)
    except NotModifiedError:
        return
    except (FileNotFoundError, NotFoundError):
        if known is not None:
            _forget(path)
        return
    except Exception as exc:
        raise _failed("download", name, exc) from None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.download-{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            for chunk in result:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if tmp.stat().st_size != result.meta["size"]:
            raise ShardStoreError(f"object storage: {name} arrived incomplete; nothing was changed, run it again")
        path.with_name(path.name + ".wal").unlink(missing_ok=True)  # a WAL belongs to the replaced copy
        os.replace(tmp, path)
        fsync_path(path.parent)
    except ShardStoreError:
        raise
    except Exception as exc:
        raise _failed("download", name, exc) from None
    finally:
        tmp.unlink(missing_ok=True)
    _remember(path, str(result.meta["e_tag"]))


def upload(settings: Settings, path: Path, *, name: str, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """After a commit: make the local file the bucket's current version (no-op without a bucket).

    ``con``, a connection with the file attached as ``raw``, is checkpointed first (the file then
    holds every committed transaction). Unchanged since the fetch: nothing is sent. Raises
    :class:`ShardConflict` when the bucket's copy is not the one this process fetched.
    """
    if settings.shard_bucket is None:
        return
    if con is not None:
        con.execute("CHECKPOINT raw")
    from obstore import put
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    known = _Fetched.read(path)
    if known is not None and known.untouched(path):
        return
    mode: Any = {"e_tag": known.e_tag} if known is not None else "create"
    try:
        result = put(_store(settings.shard_bucket), path.name, path, mode=mode)
    except (AlreadyExistsError, PreconditionError):
        raise ShardConflict(
            f"object storage: {name} was changed by another run since this run read it; this run's changes "
            "were not uploaded and nothing of them was published. Run it again (Dagster admits one run per "
            "customer: check that no second deployment writes the same bucket)"
        ) from None
    except Exception as exc:
        raise _failed("upload", name, exc) from None
    _remember(path, str(result["e_tag"]))


def in_bucket(settings: Settings, path: Path, *, name: str) -> bool:
    """Whether the bucket holds the file (False without a bucket)."""
    if settings.shard_bucket is None:
        return False
    from obstore import head
    from obstore.exceptions import NotFoundError

    try:
        head(_store(settings.shard_bucket), path.name)
    except (FileNotFoundError, NotFoundError):
        return False
    except Exception as exc:
        raise _failed("look up", name, exc) from None
    return True


def seed(settings: Settings, path: Path, *, name: str, create_only: bool) -> None:
    """Upload a local file that the bucket has no current version of (moving an installation to a bucket).

    ``create_only`` refuses to replace an object (the catalog: its arrival is what makes the
    bucket's shards live); without it an object left by an interrupted move is replaced.
    """
    assert settings.shard_bucket is not None
    from obstore import put
    from obstore.exceptions import AlreadyExistsError

    try:
        result = put(_store(settings.shard_bucket), path.name, path, mode="create" if create_only else "overwrite")
    except AlreadyExistsError:
        raise ShardConflict(f"object storage: the bucket already holds {name}; nothing was replaced") from None
    except Exception as exc:
        raise _failed("upload", name, exc) from None
    _remember(path, str(result["e_tag"]))


def delete(settings: Settings, path: Path, *, name: str) -> None:
    """Delete the file's object (a removed customer's shard) and the local copy (no-op without a bucket)."""
    if settings.shard_bucket is None:
        return
    from obstore import delete as delete_object

    try:
        delete_object(_store(settings.shard_bucket), path.name)
    except Exception as exc:
        raise _failed("delete", name, exc) from None
    _forget(path)


def _failed(verb: str, name: str, exc: Exception) -> ShardStoreError:
    """The class of the storage error only: its text may quote request details."""
    return ShardStoreError(
        f"object storage: cannot {verb} {name} ({type(exc).__name__}); check {SHARD_BUCKET_ENV} and the "
        "bucket's credentials and reachability. Nothing was published; run it again"
    )
