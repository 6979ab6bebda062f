"""Small generated data sets shared by the synthetic-data tests (module scope keeps the suite fast)."""

from __future__ import annotations

import polars as pl
import pytest

from pipeline.synthetic import GeneratedFiles, generate


@pytest.fixture(scope="module")
def clean_csv(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("clean"), customers=3, employees=3000, months=12, seed=11)


@pytest.fixture(scope="module")
def clean_events(clean_csv: GeneratedFiles) -> pl.DataFrame:
    """The clean export read back as text, exactly as a provider file arrives."""
    return pl.read_csv(clean_csv.events[0], infer_schema=False)


@pytest.fixture(scope="module")
def headcount(clean_csv: GeneratedFiles) -> pl.DataFrame:
    return pl.concat([pl.read_csv(p, infer_schema=False) for p in clean_csv.headcounts])
