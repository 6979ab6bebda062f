"""Every runnable example in the docstrings of ``privacy/`` and ``stores/`` stays true.

All modules of both packages are run (a module without examples attempts nothing); the ones
listed in ``MUST_HAVE_EXAMPLES`` must keep at least one.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import privacy
import stores

MODULES = sorted(
    info.name
    for package in (privacy, stores)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
)
MUST_HAVE_EXAMPLES = {
    "privacy.accuracy",
    "privacy.budget",
    "privacy.periods",
    "privacy.policy",
    "privacy.pseudonymise",
    "stores.connect",
    "stores.control",
    "stores.paths",
    "stores.published",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if name in MUST_HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} lost its runnable examples"


def test_every_listed_module_exists() -> None:
    assert set(MUST_HAVE_EXAMPLES) <= set(MODULES)
