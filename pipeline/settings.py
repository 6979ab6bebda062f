"""Where the pipeline keeps its files, resolved from the environment at call time (never at import).

The files the dashboards may know (published store, control store, accounts) are named in
:mod:`stores.paths`; this module adds the pipeline's own: the encrypted raw store, its key
files, the landing and archive folders and the Dagster home. Only the pipeline imports it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.keys import KEY_DIR_ENV, make_private_dir
from stores.paths import DEFAULT_RETENTION_MONTHS, RETENTION_ENV, HomePaths, resolve_home


class SettingsError(ValueError):
    """An environment setting is invalid (bad input: exit code 2)."""


# Where the authoritative copy of the shards lives when runs have no shared disk (pipeline.shard_storage).
SHARD_BUCKET_ENV = "WELLBEING_SHARD_BUCKET"
BUCKET_SCHEMES = ("s3", "gs", "az", "abfs", "abfss")
# The dashboards never get these: where the raw store lives and how to reach it (invariant 5).
OBJECT_STORAGE_ENV_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_")


def object_storage_vars(env: Mapping[str, str]) -> list[str]:
    """The variables of ``env`` that name the shard bucket or carry cloud storage credentials."""
    return [v for v in env if v == SHARD_BUCKET_ENV or v.startswith(OBJECT_STORAGE_ENV_PREFIXES)]


_BUCKET_URL = re.compile(r"(?P<scheme>[a-z0-9]+)://(?P<bucket>[A-Za-z0-9][A-Za-z0-9._@-]*)(?P<prefix>/[^\s]*)?")


def check_bucket_url(url: str) -> str:
    """The bucket URL without a trailing slash; a bad one raises :class:`SettingsError`."""
    match = _BUCKET_URL.fullmatch(url.strip())
    if match is None or match["scheme"] not in BUCKET_SCHEMES:
        raise SettingsError(
            f"{SHARD_BUCKET_ENV}={url!r}: use a bucket URL such as s3://bucket/prefix "
            f"(schemes: {', '.join(BUCKET_SCHEMES)}; no spaces), or unset it to keep the shards in "
            "$WELLBEING_HOME/shards"
        )
    return url.strip().rstrip("/")


LandingPolicy = Literal["archive", "delete", "keep"]
LANDING_POLICIES: tuple[LandingPolicy, ...] = ("archive", "delete", "keep")


@dataclass(frozen=True)
class Settings(HomePaths):
    """Paths and operational options of one installation.

    ``home`` holds the encrypted raw store, the published store, the control store and
    the landing folder; the key files too, unless ``key_dir`` (``$WELLBEING_KEY_DIR``)
    puts them outside it (production: a copy of the data folder then carries no key).
    """

    # Ingested exports still hold client_ref in clear: delete them unless told to archive.
    landing_after_ingest: LandingPolicy = "delete"
    key_dir: Path | None = None
    # s3://bucket/prefix: the shards' authoritative copy; shards/ is then a local cache (pipeline.shard_storage).
    shard_bucket: str | None = None

    @property
    def raw_path(self) -> Path:
        """The legacy single raw store (before per-customer shards): migrated once, then deleted."""
        return self.home / "raw.duckdb"

    @property
    def shards_dir(self) -> Path:
        """Where the shards are opened: one encrypted DuckDB file per customer (``<shard_id>.duckdb``) and the catalog.

        ``shards/`` itself, or with a shard bucket this process's own copies of the bucket's files
        (``shards/proc-<pid>``, :func:`pipeline.shard_storage.process_dir`).
        """
        if self.shard_bucket is None:
            return self.local_shards_dir
        from pipeline.shard_storage import process_dir

        return process_dir(self.local_shards_dir)

    @property
    def local_shards_dir(self) -> Path:
        """``$WELLBEING_HOME/shards``: the shards of an installation without a bucket (``wellbeing shards upload`` reads it)."""
        return self.home / "shards"

    @property
    def catalog_path(self) -> Path:
        """The encrypted catalog (master key): customer -> shard, deliveries, unassigned quarantine."""
        return self.shards_dir / "catalog.duckdb"

    def shard_path(self, shard_id: str) -> Path:
        return self.shards_dir / f"{shard_id}.duckdb"

    @property
    def customer_keys_dir(self) -> Path:
        """Per-customer key shares (``<shard_id>.key``); destroying one crypto-shreds that shard."""
        return self.keys_dir / "customers"

    def customer_key_file(self, shard_id: str) -> Path:
        return self.customer_keys_dir / f"{shard_id}.key"

    @property
    def published_parts_dir(self) -> Path:
        """Per-customer published parts (publishable rows only), merged into ``published.duckdb``."""
        return self.home / "published-parts"

    @property
    def published_path(self) -> Path:
        return self.published

    @property
    def control_path(self) -> Path:
        return self.control

    @property
    def keys_dir(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.home / "keys"

    @property
    def raw_key_file(self) -> Path:
        return self.keys_dir / "raw.key"

    @property
    def pseudonym_key_file(self) -> Path:
        return self.keys_dir / "pseudonym.key"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def tmp_dir(self) -> Path:
        """Where DuckDB spills while working on individual records (encrypted, inside the home)."""
        return self.home / "tmp"

    @property
    def demo_export_dir(self) -> Path:
        """Where ``wellbeing demo`` stages its synthetic export before moving it to the landing folder."""
        return self.home / "demo-export"

    def ensure_dirs(self) -> None:
        """Create the home folders; keys, landing and archive folders owner-only (0700).

        Privacy reason: landing and archived exports hold ``client_ref`` and exact dates in
        clear, so no other user of the machine may list or read them. A keys folder that is
        open to others is refused (:class:`pipeline.keys.KeyError_`), not silently fixed.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        make_private_dir(self.keys_dir)
        self.local_shards_dir.mkdir(mode=0o700, exist_ok=True)
        for folder in (self.landing_dir, self.archive_dir):
            folder.mkdir(mode=0o700, exist_ok=True)
            if folder.stat().st_mode & 0o077:
                folder.chmod(0o700)

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        """Read ``WELLBEING_HOME`` (default ``.wellbeing`` in the working directory) and options."""
        landing = os.environ.get("WELLBEING_LANDING_AFTER_INGEST", "delete")
        if landing not in LANDING_POLICIES:
            raise SettingsError(f"WELLBEING_LANDING_AFTER_INGEST={landing!r}: use one of archive, delete, keep")
        raw_retention = os.environ.get(RETENTION_ENV, str(DEFAULT_RETENTION_MONTHS))
        if not raw_retention.strip().isdigit():
            raise SettingsError(f"{RETENTION_ENV}={raw_retention!r}: use a whole number of months")
        retention = int(raw_retention)
        if retention < 1:
            raise SettingsError(f"WELLBEING_RETENTION_MONTHS={retention}: must be at least 1 month")
        key_dir = os.environ.get(KEY_DIR_ENV)
        bucket = os.environ.get(SHARD_BUCKET_ENV, "").strip()
        return cls(
            home=resolve_home(home),
            landing_after_ingest=landing,
            retention_months=retention,
            key_dir=Path(key_dir).expanduser().resolve() if key_dir else None,
            shard_bucket=check_bucket_url(bucket) if bucket else None,
        )
