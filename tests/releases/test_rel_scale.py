"""Issue 12: release cost follows the month's data (events clustered by customer and date at ingest),
all due releases of a customer reduced and measured together with the single-release accounting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline import shards
from pipeline.keys import KEY_ENV_VARS
from pipeline.raw_store import raw_connection
from pipeline.settings import Settings


@pytest.fixture(scope="module")
def shuffled_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wide-shape export delivered in random order, in two files, ingested through the real ingest code."""
    from pipeline.ingest import ingest_files
    from pipeline.synthetic import generate

    base = tmp_path_factory.mktemp("shuffled")
    saved = {v: os.environ.pop(v) for v in KEY_ENV_VARS if v in os.environ}
    try:
        files = generate(
            base / "gen",
            customers=4,
            employees=600,
            months=4,
            seed=5,
            start="2025-01",
            shape="wide",
            shuffle=True,
            shards=2,
            fmt="parquet",
        )
        home = base / "home"
        reports, refused = ingest_files(Settings.from_env(home), [*files.events, *files.headcounts])
        assert not refused and reports
    finally:
        os.environ.update(saved)
    return home


def test_events_are_stored_clustered_by_customer_and_date_whatever_the_export_order(shuffled_home: Path) -> None:
    settings = Settings.from_env(shuffled_home)
    total = 0
    for customer in shards.customers(settings):  # each customer's shard
        with shards.shard_connection(settings, customer, read_only=True) as con:
            (n, deliveries) = con.execute("SELECT count(*), count(DISTINCT delivery_id) FROM events").fetchone()  # type: ignore[misc]
            # in physical (rowid) order, (customer, date) only goes back where a new delivery starts
            (inversions,) = con.execute(
                "SELECT count(*) FROM (SELECT customer_id, occurred_on, delivery_id, "
                "lag(customer_id) OVER w AS pc, lag(occurred_on) OVER w AS po, lag(delivery_id) OVER w AS pd "
                "FROM events WINDOW w AS (ORDER BY rowid)) WHERE (customer_id, occurred_on) < (pc, po) AND delivery_id = pd"
            ).fetchone()  # type: ignore[misc]
        assert deliveries == 2 and inversions == 0
        total += n
    assert total > 1000


def test_window_ledger_equals_max_window_spend() -> None:
    """The run's budget plan uses a parsed-once ledger; it must give exactly privacy.periods.max_window_spend."""
    import random

    from pipeline.releases.lifecycle import _WindowLedger
    from privacy.periods import max_window_spend

    rng = random.Random(12)
    labels = [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)] + [
        f"{y}-Q{q}" for y in (2024, 2025, 2026) for q in range(1, 5)
    ]
    for _ in range(200):
        pairs = [(rng.choice(labels), rng.choice([0.01, 0.25, 0.5, 1.0])) for _ in range(rng.randint(0, 30))]
        ledger = _WindowLedger(pairs)
        for label in rng.sample(labels, 8):
            assert ledger.max_spend(label) == pytest.approx(max_window_spend(pairs, label), abs=1e-12)


def test_a_store_written_before_the_clustered_layout_is_rewritten_once(tmp_path: Path, wb_home: Path) -> None:
    """An older store (events in delivery order, no layout mark) is reordered by its first write
    connection, in one transaction, keeping every row; later connections leave it alone."""
    from pipeline.raw_store import EVENTS_LAYOUT, EVENTS_LAYOUT_KEY

    settings = Settings.from_env(wb_home)
    shard = shards.ensure_shards(settings, ["c0"])["c0"]
    con = shards.open_shard(settings, shard)
    con.execute(
        "INSERT INTO events SELECT 'e' || i, 'c' || (i % 3), i, 's', 'd', 'r', 'app', DATE '2025-01-01' + ((i * 7919) % 300)::INTEGER, "
        "NULL, NULL, NULL, NULL, 1, TIMESTAMP '2025-12-01' FROM range(5000) t(i)"
    )
    con.execute("DELETE FROM store_meta WHERE key = ?", [EVENTS_LAYOUT_KEY])  # as written by older code
    before = con.execute("SELECT * FROM events ORDER BY event_id").fetchall()
    con.close()

    with shards.shard_connection(settings, "c0") as con:  # a write connection: reorders
        assert con.execute("SELECT value FROM store_meta WHERE key = ?", [EVENTS_LAYOUT_KEY]).fetchone() == (
            EVENTS_LAYOUT,
        )
        assert con.execute("SELECT * FROM events ORDER BY event_id").fetchall() == before
        physical = con.execute("SELECT customer_id, occurred_on FROM events ORDER BY rowid").fetchall()
        assert physical == sorted(physical)
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_events%'").fetchone() == (0,)


def test_a_draw_with_repeated_cells_is_never_stored(rsettings: Settings) -> None:
    """Seen with DuckDB when pandas cannot be imported: the threshold statement repeated every cell.
    A draw must hold exactly one cell per key of its own customer-period, else nothing is stored or spent."""
    import polars as pl
    from release_helpers import CUSTOMERS, raw_ledger

    from pipeline.releases.lifecycle import _header
    from pipeline.releases.release_store import DrawToStore, ensure_release_schema, store_draws
    from privacy.policy import DEFAULT_POLICY
    from privacy.release import draw_release

    with raw_connection(rsettings) as con:
        ensure_release_schema(con)
        drawn = draw_release(con, CUSTOMERS[0], "2025-03", DEFAULT_POLICY)
        header = _header(drawn, policy=DEFAULT_POLICY, policy_version=0, stored=None, requested_by="test")
        for cells in (pl.concat([drawn.cells, drawn.cells]),
                      drawn.cells.with_columns(period=pl.lit("2025-02"))):  # fmt: skip
            with pytest.raises(ValueError, match="nothing was stored"):
                store_draws(con, [DrawToStore(header, cells, drawn.public_headcount, "release", drawn.allocations)])
        assert con.execute("SELECT count(*) FROM release_draws").fetchone() == (0,)
    assert raw_ledger(rsettings) == []
