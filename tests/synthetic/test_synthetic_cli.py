"""``wellbeing generate`` writes the files and prints what it wrote."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.cli import main
from pipeline.errors import EXIT_BAD_INPUT


def test_generate_writes_files_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "drop"
    code = main(
        [
            "generate",
            "--out",
            str(out),
            "--customers",
            "2",
            "--employees",
            "400",
            "--months",
            "3",
            "--seed",
            "9",
            "--start",
            "2025-10",
            "--format",
            "parquet",
            "--dirty",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "headcount-acme-moderation.csv",
        "headcount-globex-trust-safety.csv",
        "provider-export-redelivery.parquet",
        "provider-export.parquet",
    ]
    rows = pl.read_parquet(out / "provider-export.parquet").height
    assert f"wrote {rows} events for 2 customers" in printed
    for name in names:
        assert name in printed
    assert "dirty rows" in printed
    months = pl.read_csv(out / "headcount-acme-moderation.csv")["as_of"].unique().sort().to_list()
    assert months == ["2025-10", "2025-11", "2025-12"]


def test_generate_defaults_to_the_embedded_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--out", str(tmp_path)]) == 0
    assert "for 3 customers" in capsys.readouterr().out
    assert (tmp_path / "provider-export.csv").exists()
    assert len(list(tmp_path.glob("headcount-*.csv"))) == 3


def test_bad_option_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--out", str(tmp_path), "--start", "January"]) == EXIT_BAD_INPUT
    assert "YYYY-MM" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
