"""Ingest of provider deliveries into the encrypted raw store.

Modules:

* :mod:`pipeline.ingest.readers` – file format, header check against the contract, file-level refusal;
* :mod:`pipeline.ingest.rules` – row-level contract rules (DuckDB SQL) and quarantine rows;
* :mod:`pipeline.ingest.load` – pseudonymisation of distinct ``client_ref`` values and the atomic upsert.

Privacy reasons: only contract columns are ever read into the store (data
minimisation); ``client_ref`` is replaced by a keyed HMAC before anything is
written and is never stored; errors and reports hold file names, column names,
row numbers and counts only.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.ingest.load import NOT_THE_FILES_FAULT, FileReport, _sha256, ingest_file
from pipeline.ingest.readers import FileRefused, Source, open_source, peek_kind, refusal_for_read_error, sql_string
from pipeline.ingest.rules import FILE_ROW, plan_stage
from pipeline.keys import PSEUDONYM_KEY_ENV, load_or_create_key
from pipeline.progress import Progress, SilentProgress
from pipeline.raw_store import RawStoreError, RawStoreKeyError, ensure_schema, load_httpfs
from pipeline.settings import Settings
from pipeline.shard_storage import ShardStoreError
from pipeline.shards import (
    Shard,
    catalog_connection,
    ensure_migrated,
    ensure_shards,
    live_shards,
    open_shard,
    record_first_snapshot,
    upload_shard,
)
from privacy.contract import ID_MAX_CHARS, ID_PATTERN
from privacy.pseudonymise import key_check

__all__ = ["FileRefused", "FileReport", "PseudonymKeyError", "ingest_file", "ingest_files", "load_pseudonym_key"]

_KEY_CHECK = "pseudonym_key_check"
MEMORY_LIMIT_ENV = "WELLBEING_INGEST_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"


class PseudonymKeyError(RawStoreKeyError):
    """The pseudonym key is missing, or is not the key the store's pseudonyms were made with."""


class PartlyStored(FileRefused):
    """A delivery stored for some of its customers; the shards named in the message failed (deliver it again)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(path, problem)
        Exception.__init__(self, f"{self.path.name}: stored for the other customers, not stored for: {problem}")


def load_pseudonym_key(settings: Settings, con: duckdb.DuckDBPyConnection | None = None) -> bytes:
    """The HMAC key, checked against the fingerprint stored with the first pseudonyms.

    The fingerprint lives in the catalog (one key for every shard; ``con``: an open store to
    check against instead, e.g. a test's). The key file is created only while no pseudonym
    exists yet: a new key for an existing store would silently give every client a second
    pseudonym, so a missing or different key there is an error.
    """
    if con is None:
        with catalog_connection(settings) as cat:
            return load_pseudonym_key(settings, cat)
    row = con.execute("SELECT value FROM store_meta WHERE key = ?", [_KEY_CHECK]).fetchone()
    try:
        value = load_or_create_key(PSEUDONYM_KEY_ENV, settings.pseudonym_key_file, create=row is None)
    except Exception as exc:  # KeyError_ carries the actionable text
        raise PseudonymKeyError(f"pseudonym key: {exc}; nothing was changed") from None
    key = value.encode("ascii")
    check = key_check(key)
    if row is None:
        con.execute("INSERT INTO store_meta VALUES (?, ?)", [_KEY_CHECK, check])
    elif row[0] != check:
        raise PseudonymKeyError(
            f"the pseudonym key ({PSEUDONYM_KEY_ENV} or {settings.pseudonym_key_file}) is not the key this store's "
            "pseudonyms were made with; restore the original key. Nothing was changed."
        )
    return key


def ingest_files(
    settings: Settings, paths: Sequence[Path], *, progress: Progress | None = None
) -> tuple[list[FileReport], list[FileRefused]]:
    """Ingest ``paths`` in order, each file split by customer into the customers' shards.

    Headcount files are ingested first (events are checked against the customer's
    structure). A refused file (missing, unreadable, outside the contract) stores nothing
    and does not stop the others. Files that live under ``settings.landing_dir`` are archived
    (owner-only), deleted or kept after a successful ingest, as
    ``settings.landing_after_ingest`` says; refused files stay where they are, made
    owner-only. Raises :class:`pipeline.raw_store.RawStoreError` (wrong or missing key,
    lock) before anything is read. ``progress`` hears each file, each pass and each result.
    """
    progress = progress or SilentProgress()
    reports: list[FileReport] = []
    refused: list[FileRefused] = []
    ensure_migrated(settings)
    key = load_pseudonym_key(settings)  # one short catalog write (the first time)
    scratch = _scratch(settings)
    try:
        # Headcount files first: the events of the same batch are checked against that structure.
        kinds = {i: peek_kind(scratch, Path(p)) for i, p in enumerate(paths)}
        ordered = [p for i, p in enumerate(paths) if kinds[i] == "headcount"]
        ordered += [p for i, p in enumerate(paths) if kinds[i] != "headcount"]
        for path in ordered:
            progress.start(Path(path).name)
            try:
                report = ingest_split(settings, scratch, Path(path), key, on_step=progress.step)
            except FileRefused as exc:
                refused.append(exc)
            except NOT_THE_FILES_FAULT:
                raise  # out of memory, interrupted: not a refusal of the file (its transaction was rolled back)
            except (OSError, csv.Error, UnicodeError, duckdb.Error) as exc:
                # Never the exception's text: it can quote a line of the file.
                refused.append(FileRefused(Path(path), _unreadable(exc)))
            else:
                reports.append(report)
                progress.done(report.summary())
                _after_ingest(settings, Path(path))
                continue
            _make_private(settings, Path(path))
            progress.done(f"refused: {refused[-1]}", stream=sys.stderr)
    finally:
        scratch.close()
    return reports, refused


def _scratch(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory store (``raw``, the raw schema, no customer's data): file checks, routing, and
    the rows that belong to no customer (all quarantined; only their row numbers and reasons leave it)."""
    settings.ensure_dirs()
    con = duckdb.connect(config={"threads": "2"})
    try:
        load_httpfs(con)
        con.execute("ATTACH ':memory:' AS raw")
        con.execute("USE raw")
        con.execute("SET temp_file_encryption = true")
        con.execute("SET temp_directory = ?", [str(settings.tmp_dir)])
        ensure_schema(con)
        _session(con)
    except BaseException:
        con.close()
        raise
    return con


def _session(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET enable_progress_bar = false")
    # Bounded memory for big deliveries: DuckDB spills (encrypted, under WELLBEING_HOME) beyond this.
    con.execute("SET memory_limit = ?", [os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)])


def _customers_in(con: duckdb.DuckDBPyConnection, source: Source) -> list[str | None]:
    """The distinct customer ids of the file (one column read), NULL included."""
    try:
        rows = con.execute(f'SELECT DISTINCT CAST("customer_id" AS VARCHAR) FROM {source.relation}').fetchall()
    except NOT_THE_FILES_FAULT:
        raise
    except duckdb.Error as exc:
        raise refusal_for_read_error(source.path, source.format, exc) from None
    return [r[0] for r in rows]


def _valid_id(value: str | None) -> bool:
    return value is not None and 0 < len(value) <= ID_MAX_CHARS and re.fullmatch(ID_PATTERN, value) is not None


def ingest_split(
    settings: Settings,
    scratch: duckdb.DuckDBPyConnection,
    path: Path,
    key: bytes,
    *,
    on_step: Callable[[str], None] | None = None,
) -> FileReport:
    """One delivery, split by customer: each customer's rows upserted into its shard (one transaction
    per shard), the rows of no valid customer quarantined in the catalog, then one short catalog
    write (the file-level deliveries row, those quarantine rows, the first headcount month).

    Events go to customers that have a shard (created by their headcount file); a headcount file
    creates the shard of each valid customer id it names. A shard that fails after others were
    stored refuses the file for that customer only (what is stored stays; delivering the file
    again is idempotent).
    """
    step = on_step or (lambda _what: None)
    if not path.is_file():
        raise FileRefused(
            path, "file not found or not a regular file: check the path (the other files are still ingested)"
        )
    source = open_source(scratch, path)
    plan_stage(source)  # a file-level refusal (column types) before any shard is touched
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(_sha256, path)
        step("finding the customers of the file")
        found = _customers_in(scratch, source)
        valid = sorted(c for c in found if c is not None and _valid_id(c))
        if source.kind == "headcount":
            shards = ensure_shards(settings, valid) if valid else {}
        else:
            live = {s.customer_id: s for s in live_shards(settings)}
            shards = {c: live[c] for c in valid if c in live}
        sha = digest.result()
    targets = sorted(shards)
    rest = [c for c in found if c not in shards]
    stage = _Stage(settings, scratch, source) if len(targets) + bool(rest) > 1 else None
    try:
        return _load_parts(settings, scratch, path, key, source, shards, targets, rest, sha, stage, step)
    finally:
        if stage is not None:
            stage.drop()


class _Stage:
    """A delivery naming several customers, read ONCE into a staging table (sorted by customer, each
    row with its number in the file) that every customer's part then reads instead of the file. The
    table holds the file's rows (client_ref in clear), so it lives in an encrypted DuckDB file under
    ``WELLBEING_HOME/tmp`` with a random key that is never stored, and is deleted as soon as the file
    is done."""

    RELATION = "wb_stage.main.delivery"

    def __init__(self, settings: Settings, scratch: duckdb.DuckDBPyConnection, source: Source) -> None:
        settings.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = settings.tmp_dir / f"stage-{os.getpid()}-{secrets.token_hex(8)}.duckdb"
        self.key = secrets.token_hex(32)
        scratch.execute(f"ATTACH {sql_string(str(self.path))} AS wb_stage (ENCRYPTION_KEY $k)", {"k": self.key})
        (order,) = scratch.execute("SELECT current_setting('preserve_insertion_order')").fetchone()  # type: ignore[misc]
        try:
            # Numbered in file order (a streaming window over the reader under preserve_insertion_order),
            # then stored sorted by customer: each customer's part then reads only its own row groups
            # (its filter reaches the scan; was a scan of the whole delivery per customer).
            scratch.execute("SET preserve_insertion_order = true")
            scratch.execute(
                f"CREATE TABLE {self.RELATION} AS SELECT COLUMNS(c -> c <> '{FILE_ROW}'), "
                f'row_number() OVER () AS {FILE_ROW} FROM {source.relation} ORDER BY "customer_id", {FILE_ROW}'
            )
        except NOT_THE_FILES_FAULT:
            self.drop(scratch)
            raise
        except duckdb.Error as exc:
            self.drop(scratch)
            raise refusal_for_read_error(source.path, source.format, exc) from None
        finally:
            scratch.execute(f"SET preserve_insertion_order = {bool(order)}")
        scratch.execute("DETACH wb_stage")

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"ATTACH {sql_string(str(self.path))} AS wb_stage (ENCRYPTION_KEY $k, READ_ONLY)", {"k": self.key})

    @staticmethod
    def detach(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("DETACH DATABASE IF EXISTS wb_stage")

    def drop(self, scratch: duckdb.DuckDBPyConnection | None = None) -> None:
        if scratch is not None:
            self.detach(scratch)
        for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
            leftover.unlink(missing_ok=True)


def _load_parts(
    settings: Settings,
    scratch: duckdb.DuckDBPyConnection,
    path: Path,
    key: bytes,
    source: Source,
    shards: dict[str, Shard],
    targets: list[str],
    rest: list[str | None],
    sha: str,
    stage: _Stage | None,
    step: Callable[[str], None],
) -> FileReport:
    """Each customer's rows into its shard, the rest quarantined, then the short catalog write."""
    staged = stage.RELATION if stage is not None else None
    parts: list[FileReport] = []
    failed: list[str] = []
    first_snapshots: dict[str, object] = {}
    for customer in targets:
        try:
            con = open_shard(settings, shards[customer])
        except RawStoreError as exc:
            failed.append(str(exc))
            continue
        try:
            _session(con)
            if stage is not None:
                stage.attach(con)
            step(f"customer {len(parts) + len(failed) + 1} of {len(targets)}")
            report = ingest_file(
                con, path, key, on_step=step, part=f"customer_id = {sql_string(customer)}", sha256=sha,
                staged=staged,
            )  # fmt: skip
            if source.kind == "headcount":
                (first,) = con.execute("SELECT min(as_of) FROM headcount").fetchone()  # type: ignore[misc]
            upload_shard(settings, shards[customer], con)  # with a shard bucket: stored once it is there
            parts.append(report)
            if source.kind == "headcount":
                first_snapshots[customer] = first
        except FileRefused as exc:
            if not parts:
                raise  # nothing stored yet: the file is refused whole
            failed.append(f"customer {customer}: {exc.problem}")
        except ShardStoreError as exc:
            failed.append(str(exc))  # this customer's rows did not reach the bucket: deliver it again
        finally:
            con.close()
    quarantine: pl.DataFrame | None = None
    if rest:
        listed = ", ".join(sql_string(c) for c in targets)
        where = f"customer_id IS NULL OR NOT list_contains([{listed}], customer_id)" if targets else "true"
        try:
            if stage is not None:
                stage.attach(scratch)
            report = ingest_file(scratch, path, key, on_step=step, part=f"({where})", sha256=sha, staged=staged)
            if report.accepted:  # cannot happen: these rows have no customer shard to go to
                raise RawStoreError(f"{path.name}: rows without a customer shard were accepted; nothing was stored")
            quarantine = scratch.execute(
                "SELECT row_number, column_name, reason, quarantined_at FROM quarantine ORDER BY row_number"
            ).pl()  # row numbers and reasons only (no value); moved as one frame, not row by row
            parts.append(report)
        finally:
            for table in ("quarantine", "deliveries", "events", "pseudonyms", "store_meta"):
                scratch.execute(f"DELETE FROM {table}")  # the scratch store keeps nothing between files
            if stage is not None:
                stage.detach(scratch)
    if failed and not parts:
        raise FileRefused(path, "; ".join(failed))
    if not parts:
        raise FileRefused(path, "the file has a header but no data rows")
    total = _combine(path, source.kind, source.format, parts)
    with catalog_connection(settings) as cat:
        cat.execute("BEGIN TRANSACTION")
        try:
            (delivery_id,) = cat.execute("SELECT coalesce(max(delivery_id), 0) + 1 FROM deliveries").fetchone()  # type: ignore[misc]
            now = datetime.now(UTC).replace(tzinfo=None)
            cat.execute(
                "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [delivery_id, path.name, sha, source.kind, source.format, total.rows_total, total.accepted,
                 total.quarantined, total.duplicate, total.replaced, now],
            )  # fmt: skip
            if quarantine is not None and quarantine.height:
                cat.register("_wb_quarantine", quarantine)
                cat.execute(
                    "INSERT INTO quarantine SELECT ?, ?, row_number, column_name, reason, quarantined_at "
                    "FROM _wb_quarantine",
                    [delivery_id, path.name],
                )
                cat.unregister("_wb_quarantine")
            for customer, first in first_snapshots.items():
                record_first_snapshot(cat, customer, first)
            cat.execute("COMMIT")
        except BaseException:
            cat.execute("ROLLBACK")
            raise
    if failed:
        raise PartlyStored(path, "; ".join(failed))
    return replace(total, delivery_id=int(delivery_id))


def _combine(path: Path, kind: str, file_format: str, parts: list[FileReport]) -> FileReport:
    """The whole file's report from its parts (the parts partition the file's rows)."""
    return FileReport(
        path=path,
        kind="headcount" if kind == "headcount" else "events",
        rows_total=sum(p.rows_total for p in parts),
        accepted=sum(p.accepted for p in parts),
        quarantined=sum(p.quarantined for p in parts),
        duplicate=sum(p.duplicate for p in parts),
        replaced=sum(p.replaced for p in parts),
        customers=tuple(sorted({c for p in parts for c in p.customers})),
        file_format=file_format,
    )


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found: check the path (the other files are still ingested)"
    if isinstance(exc, PermissionError):
        return "permission denied: the pipeline user cannot read it"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    return f"could not be read ({type(exc).__name__}): check the file and deliver it again"


def _make_private(settings: Settings, path: Path) -> None:
    """A refused file left in the landing folder is made owner-only (it holds client_ref in clear)."""
    try:
        if path.is_file() and path.resolve().is_relative_to(settings.landing_dir.resolve()):
            path.chmod(0o600)
    except OSError:
        pass  # not ours to change (another owner): the folder itself is owner-only


def _after_ingest(settings: Settings, path: Path) -> None:
    """Archive / delete / keep an ingested landing file (files outside the landing folder are never touched)."""
    landing = settings.landing_dir.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(landing) or settings.landing_after_ingest == "keep":
        return
    if settings.landing_after_ingest == "delete":
        resolved.unlink(missing_ok=True)
        return
    settings.ensure_dirs()  # archive folder owner-only
    target = settings.archive_dir / resolved.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = settings.archive_dir / f"{resolved.stem}.{stamp}{resolved.suffix}"
    shutil.move(str(resolved), str(target))
    target.chmod(0o600)
    # Retention counts from the day of archiving (pipeline.retention): the copy expires with the raw data.
    os.utime(target)
