"""The code version recorded with every draw and ledger row: package version + ``git describe``."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGE = "wellbeing-analytics"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``'<package version>'`` or ``'<package version>+g<describe>'`` when a git checkout is available."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    root = Path(__file__).resolve().parents[2]
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"{version}+g{described}" if described else version
