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
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.ingest.load import NOT_THE_FILES_FAULT, FileReport, ingest_file
from pipeline.ingest.readers import FileRefused, peek_kind
from pipeline.keys import PSEUDONYM_KEY_ENV, load_or_create_key
from pipeline.progress import Progress, SilentProgress
from pipeline.raw_store import RawStoreKeyError, connect_raw
from pipeline.settings import Settings
from privacy.pseudonymise import key_check

__all__ = ["FileRefused", "FileReport", "PseudonymKeyError", "ingest_file", "ingest_files", "load_pseudonym_key"]

_KEY_CHECK = "pseudonym_key_check"
MEMORY_LIMIT_ENV = "WELLBEING_INGEST_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"


class PseudonymKeyError(RawStoreKeyError):
    """The pseudonym key is missing, or is not the key the store's pseudonyms were made with."""


def load_pseudonym_key(settings: Settings, con: duckdb.DuckDBPyConnection) -> bytes:
    """The HMAC key, checked against the fingerprint stored with the first pseudonyms.

    The key file is created only while the store holds no pseudonyms yet: a new
    key for an existing store would silently give every client a second
    pseudonym, so a missing or different key there is an error.
    """
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
    """Ingest ``paths`` in order: one raw-store connection, one transaction per file.

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
    con = connect_raw(settings)
    try:
        key = load_pseudonym_key(settings, con)
        con.execute("SET enable_progress_bar = false")
        # Temp files are encrypted and kept under WELLBEING_HOME by connect_raw.
        # Bounded memory for big deliveries: DuckDB spills (encrypted) beyond this.
        con.execute("SET memory_limit = ?", [os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)])
        # Headcount files first: the events of the same batch are checked against that structure.
        kinds = {i: peek_kind(con, Path(p)) for i, p in enumerate(paths)}
        ordered = [p for i, p in enumerate(paths) if kinds[i] == "headcount"]
        ordered += [p for i, p in enumerate(paths) if kinds[i] != "headcount"]
        for path in ordered:
            progress.start(Path(path).name)
            try:
                report = ingest_file(con, Path(path), key, on_step=progress.step)
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
        con.close()
    return reports, refused


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
