"""A process's heavy modules, imported before its work with the garbage collector paused, then frozen.

Imports allocate about a million long-lived objects. The full collections they trigger find
nothing to free, and every later full collection scans them again: in a fresh ``wellbeing
release`` that is about a fifth of the wall time. Frozen (:func:`gc.freeze`), they stay out of
every later collection; the collector itself runs as usual for the command's own objects.
"""

from __future__ import annotations

import gc
import importlib

# What a release loads anyway (pandas: DuckDB's parameter binding imports it on the first query;
# OpenDP through privacy/, the only package that imports it).
RELEASE_MODULES = (
    "pipeline.releases.lifecycle", "privacy.release", "privacy.measure:load_opendp", "scipy.special", "pandas",
)  # fmt: skip


def preload(modules: tuple[str, ...]) -> None:
    """Import ``modules`` (``module`` or ``module:function`` to call) with the collector paused, then freeze."""
    if not modules:
        return
    gc.disable()
    try:
        for entry in modules:
            name, _, function = entry.partition(":")
            module = importlib.import_module(name)
            if function:
                getattr(module, function)()
    finally:
        gc.freeze()
        gc.enable()
