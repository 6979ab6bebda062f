"""Import boundaries are a privacy control: the dashboards can never reach the raw store.

- ``privacy/`` is a pure library: no dagster, streamlit, stores, pipeline or dashboards imports.
- ``stores/`` (what pipeline and dashboards share) imports ``privacy/`` only of this repository:
  no dagster, streamlit, pipeline or dashboards; and, like the dashboards, never names the raw
  store, its file, the keys folder or the key variables.
- ``pipeline/`` never imports ``dashboards/`` (nor Streamlit); ``dashboards/`` never imports ``pipeline``.
- OpenDP is imported only inside ``privacy/`` (one front door for every measurement).
- No hand-written randomness in the privacy path (``privacy/`` and the release code).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    hits = []
    for path in _python_files(package):
        for module in _imported_modules(path):
            if module.split(".")[0] in forbidden:
                hits.append(f"{path.relative_to(ROOT)} imports {module}")
    return hits


def test_packages_exist() -> None:
    for package in ("privacy", "stores", "pipeline", "dashboards"):
        assert _python_files(package), f"{package}/ has no Python files"


def test_privacy_is_a_pure_library() -> None:
    assert _offending("privacy", ("dagster", "dagster_duckdb", "streamlit", "stores", "pipeline", "dashboards")) == []


def test_stores_depend_on_privacy_only() -> None:
    assert _offending("stores", ("dagster", "dagster_duckdb", "streamlit", "opendp", "pipeline", "dashboards")) == []


def test_pipeline_never_imports_the_dashboards() -> None:
    assert _offending("pipeline", ("dashboards", "streamlit")) == []


def test_dashboards_never_import_the_pipeline() -> None:
    assert _offending("dashboards", ("pipeline", "dagster", "dagster_duckdb", "opendp")) == []


RAW_STORE_NEEDLES = (
    "raw.duckdb", "raw_store", "raw_path", "WELLBEING_RAW_KEY", "WELLBEING_PSEUDONYM_KEY", "raw.key", "pseudonym.key",
    '"keys"', "'keys'", "keys/", "keys_dir",
    # per-customer shards (pipeline.shards): the folder, the catalog, the key shares, the published parts
    "shard", "Shard", "catalog.duckdb", "customer_key", "key share", "key_share", "published-parts", "published_parts",
)  # fmt: skip


@pytest.mark.parametrize("package", ["dashboards", "stores"])
def test_dashboards_and_stores_never_name_the_raw_store_or_its_keys(package: str) -> None:
    """Nor the per-customer shards, their catalog, their key shares or the published parts."""
    hits = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in _python_files(package)
        for needle in RAW_STORE_NEEDLES
        if needle in path.read_text(encoding="utf-8")
    ]
    assert hits == []


def test_opendp_is_imported_only_inside_privacy() -> None:
    for package in ("stores", "pipeline", "dashboards"):
        assert _offending(package, ("opendp",)) == [], package


@pytest.mark.parametrize("package", ["privacy", "pipeline/releases"])
def test_no_hand_written_noise_in_the_privacy_path(package: str) -> None:
    if not (ROOT / package).exists():
        pytest.fail(f"{package} is missing")
    hits = []
    for path in _python_files(package):
        for module in _imported_modules(path):
            if module in ("random", "secrets") or module.startswith("numpy.random"):
                hits.append(f"{path.relative_to(ROOT)} imports {module}")
        text = path.read_text(encoding="utf-8")
        for needle in ("np.random", "numpy.random", "default_rng(", "random.gauss", "random.random("):
            if needle in text:
                hits.append(f"{path.relative_to(ROOT)} uses {needle}")
    assert hits == []


def test_render_paths_never_use_the_polars_calls_that_deadlock() -> None:
    """Streamlit renders sessions in threads; with the pinned polars, a ``map_elements`` beside a
    ``to_pandas`` (or two conversions of one frame) hangs the whole server. Only
    ``dashboards/frames.py`` converts frames (under a lock), and only ``ui.table`` hands tables
    to ``st.dataframe`` (as Arrow, never a polars frame, which Streamlit turns into pandas).
    """
    needles = ("map_elements", "map_rows", "map_batches", ".to_pandas(", ".to_arrow(", ".to_numpy(", "st.dataframe(")
    allowed = {"dashboards/frames.py": {".to_arrow("}, "dashboards/ui.py": {"st.dataframe("}}
    hits = []
    for path in _python_files("dashboards"):
        rel = str(path.relative_to(ROOT))
        text = path.read_text(encoding="utf-8")
        body = text.split('"""', 2)[-1] if text.lstrip().startswith('"""') else text  # skip the module docstring
        hits += [f"{rel}: {n}" for n in needles if n in body and n not in allowed.get(rel, set())]
    assert hits == []
