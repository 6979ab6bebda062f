"""``wellbeing keys``: where the keys are read from, and ``rotate`` (re-encrypt the raw store).

Privacy reason: in production the keys live outside the data folder (``WELLBEING_KEY_DIR``,
e.g. a mounted secret), so a copy of the data folder carries no key; rotation makes copies
taken before it unreadable with the current key.
"""

from __future__ import annotations

import argparse
import os

from pipeline.keys import KEY_DIR_ENV, PSEUDONYM_KEY_ENV, RAW_KEY_ENV


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="where the keys are; rotate the raw store's key")
    verbs = parser.add_subparsers(dest="keys_verb", required=True, metavar="where|rotate")
    where = verbs.add_parser("where", help="print where each key is read from (never the key)")
    where.set_defaults(func=run_where)
    rotate = verbs.add_parser(
        "rotate",
        help="re-encrypt the raw store under a new key (atomic; run again to finish an interrupted rotation)",
        description=(
            "Copy the raw store under a new key, swap it in atomically, retire the old key to "
            "keys/retired/ and record the rotation in keys/rotations.log. Interrupted, nothing is lost: "
            "run it again. Stop the pipeline (Dagster runs, ingest) first; it waits for the store's lock."
        ),
    )
    rotate.set_defaults(func=run_rotate)


def run_where(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings

    settings = Settings.from_env()
    outside = settings.keys_dir.resolve().is_relative_to(settings.home.resolve()) is False
    print(f"key folder: {settings.keys_dir} ({'outside' if outside else 'inside'} the data folder {settings.home})")
    for env, path in ((RAW_KEY_ENV, settings.raw_key_file), (PSEUDONYM_KEY_ENV, settings.pseudonym_key_file)):
        source = f"environment variable {env}" if os.environ.get(env) else f"file {path}"
        print(f"  {env.removeprefix('WELLBEING_').lower():<14} {source}")
    shares = settings.customer_keys_dir
    count = len(list(shares.glob("*.key"))) if shares.is_dir() else 0
    print(f"  {'customer key shares':<14} folder {shares} ({count}; one per customer shard, destroyed on removal)")
    if settings.shard_bucket:
        print(
            f"shards: bucket {settings.shard_bucket} (never holds a key or a key share); local copies in {settings.shards_dir}"
        )
    else:
        print(f"shards: folder {settings.shards_dir}")
    if not outside and not any(os.environ.get(e) for e in (RAW_KEY_ENV, PSEUDONYM_KEY_ENV)):
        print(f"note: for production set {KEY_DIR_ENV} to a folder outside the data folder (see README)")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from pipeline.key_rotation import rotate_raw_key
    from pipeline.settings import Settings

    rotation = rotate_raw_key(Settings.from_env())
    what = "finished an interrupted rotation" if rotation.resumed else f"re-encrypted {rotation.tables} tables"
    print(
        f"raw store key rotated ({what}): key {rotation.old_fingerprint} retired to {rotation.retired_file}, "
        f"current key {rotation.new_fingerprint}. Destroy the retired key once no backup made under it is kept."
    )
    return 0
