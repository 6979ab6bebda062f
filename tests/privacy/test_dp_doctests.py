"""The runnable examples in the privacy modules' docstrings stay true."""

from __future__ import annotations

import doctest

import pytest

import privacy.accuracy
import privacy.budget
import privacy.intervals
import privacy.periods
import privacy.policy


@pytest.mark.parametrize(
    "module", [privacy.periods, privacy.policy, privacy.budget, privacy.accuracy, privacy.intervals]
)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
