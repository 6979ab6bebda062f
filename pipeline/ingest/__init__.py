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

import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.ingest.load import FileReport, ingest_file
from pipeline.ingest.readers import FileRefused
from pipeline.keys import PSEUDONYM_KEY_ENV, load_or_create_key
from pipeline.raw_store import RawStoreError, connect_raw
from pipeline.settings import Settings
from privacy.pseudonymise import key_check

__all__ = ["FileRefused", "FileReport", "PseudonymKeyError", "ingest_file", "ingest_files", "load_pseudonym_key"]

_KEY_CHECK = "pseudonym_key_check"
MEMORY_LIMIT_ENV = "WELLBEING_INGEST_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"


class PseudonymKeyError(RawStoreError):
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


def ingest_files(settings: Settings, paths: Sequence[Path]) -> tuple[list[FileReport], list[FileRefused]]:
    """Ingest ``paths`` in order: one raw-store connection, one transaction per file.

    A refused file stores nothing and does not stop the others. Files that live
    under ``settings.landing_dir`` are archived, deleted or kept after a
    successful ingest, as ``settings.landing_after_ingest`` says; refused files
    stay where they are. Raises :class:`RawStoreError` (wrong or missing key, lock)
    before anything is read.
    """
    reports: list[FileReport] = []
    refused: list[FileRefused] = []
    con = connect_raw(settings)
    try:
        key = load_pseudonym_key(settings, con)
        con.execute("SET enable_progress_bar = false")
        # Temp files are encrypted and kept under WELLBEING_HOME by connect_raw.
        # Bounded memory for big deliveries: DuckDB spills (encrypted) beyond this.
        con.execute("SET memory_limit = ?", [os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)])
        for path in paths:
            try:
                reports.append(ingest_file(con, Path(path), key))
            except FileRefused as exc:
                refused.append(exc)
                continue
            _after_ingest(settings, Path(path))
    finally:
        con.close()
    return reports, refused


def _after_ingest(settings: Settings, path: Path) -> None:
    """Archive / delete / keep an ingested landing file (files outside the landing folder are never touched)."""
    landing = settings.landing_dir.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(landing) or settings.landing_after_ingest == "keep":
        return
    if settings.landing_after_ingest == "delete":
        resolved.unlink(missing_ok=True)
        return
    settings.archive_dir.mkdir(parents=True, exist_ok=True)
    target = settings.archive_dir / resolved.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = settings.archive_dir / f"{resolved.stem}.{stamp}{resolved.suffix}"
    shutil.move(str(resolved), str(target))
