"""Shards in object storage: each process works on its own copies and uploads them with conditional writes.

Unset (the default), the shards and the catalog live in ``$WELLBEING_HOME/shards`` and every
function here does nothing. With ``WELLBEING_SHARD_BUCKET=s3://bucket/prefix`` (or ``gs://``,
``az://``; credentials from the platform's usual variables or workload identity), the bucket
holds the authoritative copy of each encrypted file (``<shard_id>.duckdb``, ``catalog.duckdb``)
and each process keeps its own copies in ``shards/proc-<pid>-<random>/`` (deleted when it
exits; left by a killed process, deleted by the next one once the ended process's ``flock`` is
free). Two processes never share a local copy, so one can never replace a file another has open
(on Kubernetes every run pod has its own ``emptyDir`` besides).

* :func:`fetch` before a file is opened: the copy becomes the bucket's current version (one
  conditional GET: nothing is downloaded when this process's copy is current and untouched).
* :func:`upload` after a commit: ``CHECKPOINT``, then a compare-and-swap PUT (``If-Match`` the
  version fetched, with its generation on GCS; ``If-None-Match: *`` for a new file). A second
  writer (which Dagster's one-run-per-customer limit should make impossible) fails its run with
  :class:`ShardConflict` instead of overwriting the other's draws or ledger rows. An unchanged
  copy is checked against the bucket (HEAD) instead: a stale copy is never published from.
* :func:`delete` when a customer is removed (after its key share was shredded).
* ``wellbeing shards upload`` (:func:`pipeline.shards.upload_local`) moves a local installation:
  its files are deleted after the upload and ``shards/MOVED-TO-BUCKET`` names the bucket, so a
  command without the setting refuses (:func:`refuse_if_moved`) instead of using stale copies.
* A missing catalog is only a new installation when nothing says otherwise: a folder with a
  catalog, published releases or key shares but a bucket without a catalog is a wrong setting
  or a move not made (``wellbeing shards upload``), and every command refuses
  (:class:`ShardStoreSetupError`) instead of starting a second, empty ledger.

Privacy reasons: the bucket holds only DuckDB files encrypted under the master key (catalog) or
a per-customer key (shards); object names are random shard ids, never customer names; the key
shares and the master key never go to the bucket. A customer's published part is written only
after its shard was uploaded (:func:`pipeline.releases.publish.write_part`), so a published
release always has its draw and ledger row in the authoritative copy: a re-run serves that draw
and the budget counts it (invariants 3 and 4). With bucket versioning, noncurrent versions keep
what retention purged and what a key rotation re-encrypted until they expire: docs/deployment.md
asks for a noncurrent-version expiry shorter than the purge cadence.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import re
import secrets
import shutil
import tempfile
import time
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
    """Object storage could not be read or written (names the file, never data)."""


class ShardStoreSetupError(ShardStoreError):
    """The bucket setting does not fit the bucket or this installation (bad input: exit code 2); nothing was changed."""


class ShardConflict(ShardStoreError):
    """The bucket's copy changed since this process fetched it: this run's changes were not uploaded (exit code 4)."""


CATALOG_FILE = "catalog.duckdb"  # never deleted from a bucket: missing means a new installation or a wrong setting
PROCESS_DIR_PREFIX = "proc-"


@cache
def _store(url: str) -> Any:
    """The obstore client of the bucket (credentials from the environment), one per process."""
    try:
        return _client(url)
    except Exception as exc:
        raise ShardStoreSetupError(
            f"{SHARD_BUCKET_ENV}={url!r}: not a usable bucket ({_detail(exc)}); nothing was changed"
        ) from None


def _client(url: str) -> Any:
    from obstore.store import from_url

    options: dict[str, Any] = {"conditional_put": "etag"} if url.startswith("s3://") else {}
    # A shard is one PUT (a conditional write cannot be multipart): time for a large file to move.
    client: dict[str, Any] = {"timeout": timedelta(minutes=10), "connect_timeout": timedelta(seconds=10)}
    if os.environ.get("AWS_ALLOW_HTTP", "").lower() == "true":  # an in-cluster S3-compatible server (MinIO)
        client["allow_http"] = True  # explicit client options replace the ones read from the environment
    options["client_options"] = client
    # A few quick retries, then a clear error (the default waits up to three minutes).
    options["retry_config"] = {"max_retries": 3, "retry_timeout": timedelta(seconds=30)}
    return from_url(url, **options)


# ---------------------------------------------------------------------------------------------
# This process's copies


def process_dir(base: Path) -> Path:
    """This process's copies: ``base/proc-<pid>-<random>`` (0700), deleted at exit; leftovers of ended processes go."""
    return _process_dir(base, os.getpid())  # keyed by pid: a forked child never uses its parent's copies


_HELD: list[int] = []  # the liveness locks' descriptors, open for the life of the process


@cache
def _process_dir(base: Path, pid: int) -> Path:
    """A new folder, its liveness lock held (``flock`` on ``.alive``) for the life of this process.

    Random, not just the pid: processes of different containers sharing the folder may have the
    same pid. A folder is another process's leftovers only when its lock can be taken (the
    kernel released it when that process ended), never from a pid alone.
    """
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    own = base / f"{PROCESS_DIR_PREFIX}{pid}-{secrets.token_hex(4)}"
    own.mkdir(mode=0o700)
    fd = os.open(own / ".alive", os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD.append(fd)
    for other in base.glob(f"{PROCESS_DIR_PREFIX}*"):
        if other != own:
            _remove_if_ended(other)
    atexit.register(_remove_own, own, pid)
    return own


def _remove_if_ended(folder: Path) -> None:
    """Delete another process's folder if that process has ended (its lock is free); never a live one's."""
    try:
        fd = os.open(folder / ".alive", os.O_RDWR)
    except FileNotFoundError:
        try:
            if time.time() - folder.stat().st_mtime > 3600:  # its owner ended before taking the lock
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass
        return
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return  # its process is alive
    try:
        shutil.rmtree(folder, ignore_errors=True)  # encrypted copies of an ended process
    finally:
        os.close(fd)


def _remove_own(folder: Path, pid: int) -> None:
    if os.getpid() == pid:  # not a forked child that exits (it inherited the handler)
        shutil.rmtree(folder, ignore_errors=True)


# The modification time a copy gets when it matches the bucket. Any later write sets the time to
# "now", which can never equal it: a change is seen even within the file system's clock tick and
# at the same size (a small commit often fits the file's free blocks).
_MATCHED_MTIME_NS = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z


@dataclass(frozen=True)
class _Fetched:
    """The bucket version a copy matched when last fetched or uploaded (sidecar ``<file>.etag``)."""

    e_tag: str
    version: str | None  # the object's generation where the store needs it for a conditional write (GCS)
    stat: tuple[int, int, int, int]  # inode, size, mtime, ctime of the matching copy

    @staticmethod
    def read(path: Path) -> _Fetched | None:
        try:
            data = json.loads(_sidecar(path).read_text(encoding="ascii"))
            return _Fetched(str(data["e_tag"]), data.get("version"), tuple(data["stat"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def untouched(self, path: Path) -> bool:
        try:
            return _stat(path) == self.stat
        except OSError:
            return False

    def condition(self) -> dict[str, str]:
        return {"e_tag": self.e_tag} | ({"version": self.version} if self.version else {})


def _stat(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".etag")


def _remember(path: Path, e_tag: str, version: str | None) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, _MATCHED_MTIME_NS))
    data = {"e_tag": e_tag, "version": version, "stat": list(_stat(path))}
    _write_beside(_sidecar(path), json.dumps(data).encode("ascii"))


def _write_beside(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, target)


def _forget(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal"), _sidecar(path)):
        leftover.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Fetch, upload, delete


def fetch(settings: Settings, path: Path, *, name: str) -> None:
    """Make ``path`` the bucket's current version of the file (no-op without a bucket).

    A shard not in the bucket: a copy that came from it is deleted (the customer was removed
    elsewhere); a file this process is creating is kept. The catalog not in the bucket: see
    :func:`_no_catalog`.
    """
    if settings.shard_bucket is None:
        refuse_if_moved(settings)
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
        if path.name == CATALOG_FILE:
            _no_catalog(settings, store, path)
        elif known is not None:
            _forget(path)
        return
    except Exception as exc:
        raise _failed("download", name, exc) from None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.download-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
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
    _remember(path, str(result.meta["e_tag"]), result.meta.get("version"))


MOVED_MARKER = "MOVED-TO-BUCKET"  # in shards/ after `wellbeing shards upload`: the bucket it went to


def refuse_if_moved(settings: Settings) -> None:
    """Without a bucket setting, refuse an installation whose shards were moved into a bucket.

    Its local files were deleted by the move; a command without the setting would otherwise start
    an empty store beside the bucket's (a second ledger, releases drawn again).
    """
    marker = settings.local_shards_dir / MOVED_MARKER
    if marker.exists():
        bucket = marker.read_text(encoding="utf-8").strip()
        raise ShardStoreSetupError(
            f"the shards of this installation were moved into {bucket} (`wellbeing shards upload`): set "
            f"{SHARD_BUCKET_ENV}={bucket} for every command and run. Nothing was changed"
        )


def mark_moved(settings: Settings) -> None:
    """Record the move and delete the local files it made obsolete (the bucket's copies are authoritative)."""
    assert settings.shard_bucket is not None
    local = settings.local_shards_dir
    _write_beside(local / MOVED_MARKER, (settings.shard_bucket + "\n").encode("utf-8"))
    for path in local.iterdir():
        if path.is_file() and path.name.endswith((".duckdb", ".duckdb.wal", ".duckdb.etag")):
            path.unlink()
    fsync_path(local)


def remote_size(settings: Settings, path: Path) -> int:
    """The size of the file's object in bytes (0 when absent or unknown; for ordering work only)."""
    if settings.shard_bucket is None:
        return 0
    from obstore import head

    try:
        return int(head(_store(settings.shard_bucket), path.name)["size"])
    except Exception:
        return 0


def _no_catalog(settings: Settings, store: Any, path: Path) -> None:
    """The bucket has no catalog: a new installation, unless anything says one exists (then refuse)."""
    from obstore import list_with_delimiter

    try:
        list_with_delimiter(store)
    except Exception as exc:
        raise ShardStoreSetupError(
            f"{SHARD_BUCKET_ENV}={settings.shard_bucket}: the bucket cannot be listed ({_detail(exc)}): check that "
            "it exists and that these credentials may read it; nothing was changed"
        ) from None
    local = settings.local_shards_dir / CATALOG_FILE
    signs = [
        str(p)
        for p, there in (
            (local, local.exists()),
            (settings.published_path, settings.published_path.exists()),
            (settings.customer_keys_dir, any(settings.customer_keys_dir.glob("*.key"))),
        )
        if there
    ]
    if signs or _Fetched.read(path) is not None:
        raise ShardStoreSetupError(
            f"{SHARD_BUCKET_ENV}={settings.shard_bucket} holds no catalog, but this installation has one "
            f"({', '.join(signs) or 'fetched before'}): if the setting is mistyped, correct it; to move a local "
            "installation into the bucket, run `wellbeing shards upload` once (with no run in progress). "
            "Nothing was changed"
        )


def upload(settings: Settings, path: Path, *, name: str, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """After a commit: make the local file the bucket's current version (no-op without a bucket).

    ``con``, a connection with the file attached as ``raw``, is checkpointed first (the file then
    holds every committed transaction). Unchanged since the fetch: the bucket's version is checked
    instead (HEAD). Raises :class:`ShardConflict` when the bucket's copy is not the one this
    process fetched.
    """
    if settings.shard_bucket is None:
        return
    if con is not None:
        con.execute("CHECKPOINT raw")
    from obstore import head, put
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    store = _store(settings.shard_bucket)
    known = _Fetched.read(path)
    if known is not None and known.untouched(path):
        try:
            current = head(store, path.name)["e_tag"]
        except Exception as exc:
            raise _failed("look up", name, exc) from None
        if current != known.e_tag:
            raise _conflict(name)
        return
    mode: Any = known.condition() if known is not None else "create"
    try:
        result = put(store, path.name, path, mode=mode)
    except (AlreadyExistsError, PreconditionError):
        raise _conflict(name) from None
    except Exception as exc:
        raise _failed("upload", name, exc) from None
    _remember(path, str(result["e_tag"]), result.get("version"))


def _conflict(name: str) -> ShardConflict:
    return ShardConflict(
        f"object storage: {name} was changed by another run since this run read it; this run's changes were "
        "not uploaded and nothing of them was published. Run it again (Dagster admits one run per customer: "
        "check that no second deployment or command writes the same bucket)"
    )


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
    """Upload a local file the bucket has no current version of (moving an installation into a bucket).

    ``create_only`` refuses to replace an object (the catalog: its arrival is what makes the
    bucket's shards live); without it an object left by an interrupted move is replaced.
    """
    assert settings.shard_bucket is not None
    from obstore import put
    from obstore.exceptions import AlreadyExistsError

    try:
        put(_store(settings.shard_bucket), path.name, path, mode="create" if create_only else "overwrite")
    except AlreadyExistsError:
        raise ShardStoreSetupError(f"object storage: the bucket already holds {name}; nothing was replaced") from None
    except Exception as exc:
        raise _failed("upload", name, exc) from None


def delete(settings: Settings, path: Path, *, name: str) -> None:
    """Delete the file's object (a removed customer's shard) and this process's copy (no-op without a bucket)."""
    if settings.shard_bucket is None:
        return
    from obstore import delete as delete_object

    try:
        delete_object(_store(settings.shard_bucket), path.name)
    except Exception as exc:
        raise _failed("delete", name, exc) from None
    _forget(path)


_CONSEQUENCE = {
    "download": "nothing was changed",
    "look up": "nothing was changed and nothing of this run was published",
    "upload": "this run's changes were not uploaded and nothing of them was published",
    "delete": "the customer's key share is already destroyed, so the object is unreadable; run the removal again "
    "to delete it",
}


def _failed(verb: str, name: str, exc: Exception) -> ShardStoreError:
    """What failed and the storage client's own first line (URLs of random object ids, HTTP status: no data)."""
    return ShardStoreError(
        f"object storage: cannot {verb} {name}: {_detail(exc)}. Check {SHARD_BUCKET_ENV}, the credentials and "
        f"that the endpoint is reachable; {_CONSEQUENCE[verb]}"
    )


def _detail(exc: Exception) -> str:
    """The first line of a storage error, shortened (the rest is a debug dump); URL queries cut (SAS tokens)."""
    first = (str(exc).strip().splitlines() or [""])[0].strip()
    first = first.split("<?xml")[0].rstrip(": ")  # an S3 error body adds nothing readable
    first = re.sub(r"\?\S*", "?…", first)
    return (first[:240] + "…" if len(first) > 240 else first) or type(exc).__name__
