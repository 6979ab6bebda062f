"""The privacy library as it was before the utility work, for side-by-side benchmarks ("today's policy").

``load_before(rev)`` copies ``privacy/`` of git revision ``rev`` into a temporary package named
``privacy_before`` (imports rewritten) and imports it, so a benchmark can run the previous
release path — its policy, estimands and intervals — on the same data as the current one.
Benchmark support only: nothing here is part of the product.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
# The last version before one annual ε, the outcome measures, consistency and selection-aware intervals.
BEFORE = "d41dcde"


def load_before(rev: str = BEFORE) -> ModuleType:
    """Import ``privacy`` of ``rev`` as ``privacy_before`` (raises with what to do if git cannot show it)."""
    if "privacy_before" in sys.modules:
        return sys.modules["privacy_before"]
    try:
        names = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{rev}:privacy"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit(
            f"cannot read privacy/ at {rev} from git: run in a clone with history (git fetch --unshallow)"
        ) from None
    target = Path(tempfile.mkdtemp(prefix="privacy_before_")) / "privacy_before"
    target.mkdir()
    for name in names:
        if not name.endswith(".py"):
            continue
        text = subprocess.run(
            ["git", "show", f"{rev}:privacy/{name}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        text = re.sub(r"\bfrom privacy(\.| import)", r"from privacy_before\1", text)
        text = re.sub(r"\bimport privacy\.", "import privacy_before.", text)
        (target / name).write_text(text, encoding="utf-8")
    sys.path.insert(0, str(target.parent))
    return importlib.import_module("privacy_before")
