"""Retention: raw data older than the window is deleted, not just hidden.

Privacy reason: storage limitation. Individual events, their quarantine rows and
archived landing files (which still hold the provider's clear ``client_ref``)
are kept only for ``retention_months`` whole months before the current month; a
person's pseudonym is kept only while an event still refers to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb

from pipeline.settings import Settings
from pipeline.shards import catalog_connection, catalog_exists, live_shards, open_shard, upload_shard


@dataclass(frozen=True)
class PurgeReport:
    """What a purge deleted (counts only)."""

    cutoff: date  # everything strictly before this day was deleted
    events_deleted: int
    quarantine_deleted: int
    archive_files_deleted: int
    pseudonyms_deleted: int = 0  # people with no event left in the window

    def summary(self) -> str:
        return (
            f"purged data before {self.cutoff.isoformat()}: {self.events_deleted} events, "
            f"{self.pseudonyms_deleted} pseudonyms, {self.quarantine_deleted} quarantine rows, "
            f"{self.archive_files_deleted} archived files"
        )


def retention_cutoff(months: int, today: date) -> date:
    """First day of the month ``months`` whole months before ``today``'s month."""
    if months < 1:
        raise ValueError(f"retention must be at least 1 month, got {months}")
    index = today.year * 12 + (today.month - 1) - months
    return date(index // 12, index % 12 + 1, 1)


def _purge_store(con: duckdb.DuckDBPyConnection, cutoff: date) -> tuple[int, int, int]:
    """Events, pseudonyms no event refers to, and quarantine rows before ``cutoff``: one transaction, then CHECKPOINT."""
    con.execute("BEGIN TRANSACTION")
    try:
        (events,) = con.execute("DELETE FROM events WHERE occurred_on < ?", [cutoff]).fetchone()  # type: ignore[misc]
        (pseudonyms,) = con.execute(
            "DELETE FROM pseudonyms WHERE employee NOT IN (SELECT DISTINCT employee FROM events)"
        ).fetchone()  # type: ignore[misc]
        (quarantine,) = con.execute(
            "DELETE FROM quarantine WHERE CAST(quarantined_at AS DATE) < ?", [cutoff]
        ).fetchone()  # type: ignore[misc]
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("CHECKPOINT")
    return int(events), int(pseudonyms), int(quarantine)


def purge_older_than(settings: Settings, months: int, *, today: date | None = None) -> PurgeReport:
    """Delete events with ``occurred_on`` before the cutoff, quarantine rows and archived files older than it.

    Per customer shard (one at a time, one transaction each, then a CHECKPOINT so the deleted
    rows leave the file's live blocks), then the catalog's quarantine rows. Pseudonyms that no
    remaining event of the shard refers to are deleted with the events.
    """
    cutoff = retention_cutoff(months, today or datetime.now(UTC).date())
    events = pseudonyms = quarantine = 0
    for shard in live_shards(settings):  # migrates a legacy store first; one shard at a time
        con = open_shard(settings, shard)
        try:
            e, p, q = _purge_store(con, cutoff)
            upload_shard(settings, shard, con)  # with a shard bucket: the purge holds once it is there
        finally:
            con.close()
        events, pseudonyms, quarantine = events + e, pseudonyms + p, quarantine + q
    if catalog_exists(settings):  # quarantine rows of no customer (row numbers and reasons only)
        with catalog_connection(settings) as con:
            _, _, q = _purge_store(con, cutoff)
        quarantine += q
    archived = 0
    if settings.archive_dir.is_dir():
        for path in settings.archive_dir.iterdir():
            if path.is_file() and datetime.fromtimestamp(path.stat().st_mtime, UTC).date() < cutoff:
                path.unlink()
                archived += 1
    return PurgeReport(cutoff=cutoff, events_deleted=int(events), quarantine_deleted=int(quarantine),
                       archive_files_deleted=archived, pseudonyms_deleted=int(pseudonyms))  # fmt: skip
