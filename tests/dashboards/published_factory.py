"""Writes a published store with plausible cells straight from the schema in :mod:`stores.published`.

Test and benchmark data only (deterministic pseudo-random values, not a privacy path): the
dashboards read whatever the pipeline publishes, so their tests need a store of known content.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from stores import published

DEPARTMENTS = ("Finance", "Operations", "Sales", "Engineering", "People", "Small teams")
SITES = ("North", "South", "Remote")
ROLES = ("Manager", "Specialist", "Support")
SERVICES = ("one_to_one", "group", "app", "webinar", "crisis_support")
TOPICS = ("stress", "burnout", "anxiety", "low_mood", "trauma_exposure", "relationships", "work_life", "other")

SCHEMA_SQL = published.ddl()


def month_labels(start: str, n: int) -> list[str]:
    y, m = int(start[:4]), int(start[5:7])
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _cell(
    release_id: str, customer: str, period: str, dim: str, group: str, metric: str, value: float, half: float, ok: bool
) -> dict[str, object]:
    """One release cell (columns by name; a column the schema adds later stays NULL)."""
    return dict(
        release_id=release_id,
        customer_id=customer,
        period=period,
        dimension=dim,
        group_value=group,
        metric=metric,
        value=value if ok else None,
        ci_low=value - half if ok else None,
        ci_high=value + half if ok else None,
        suppressed=not ok,
        status="published" if ok else "hidden",
        noise_sd=half / 1.96,
        reason=None if ok else "noisy count below k + z*sigma",
    )


def _release(
    rel_rows: list,
    ledger_rows: list,
    entry_id: int,
    release_id: str,
    customer: str,
    period: str,
    granularity: str,
    created: datetime,
    rho: float,
) -> int:
    """Append one release and its ledger row (zCDP ρ with its (ε, δ = 1e-6)); return the next entry id."""
    eps = rho + 2 * math.sqrt(rho * math.log(1e6))
    common = dict(
        customer_id=customer,
        period=period,
        release_id=release_id,
        rho=rho,
        epsilon=eps,
        delta=1e-6,
        policy_version=1,
        created_at=created,
        code_version="test",
        requested_by="scheduler",
    )
    rel_rows.append(dict(**common, granularity=granularity, version=1, accounting="zcdp", k=10, k_scores=10, z=1.645))
    ledger_rows.append(dict(**common, entry_id=entry_id, kind="release"))
    return entry_id + 1


def write_empty_store(path: Path) -> Path:
    """A published store with the schema but no rows (before the first release)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(SCHEMA_SQL)
    con.close()
    return path


def write_published_store(
    path: Path,
    customers: list[str],
    n_months: int,
    *,
    start: str = "2023-01",
    seed: int = 7,
    marker_values: dict[str, float] | None = None,
) -> Path:
    """Write ``published.duckdb`` for ``customers`` × ``n_months`` months of plausible released cells.

    ``marker_values`` maps customer_id -> a distinctive engaged_employees total of its last month,
    so tests can check that one customer's number never shows up in another's view.
    """
    rng = random.Random(seed)
    months = month_labels(start, n_months)
    rel_rows, cell_rows, ledger_rows, hc_rows, alloc_rows = [], [], [], [], []
    entry_id = 0
    rho = 0.25
    sd = 5.77
    for c_index, customer in enumerate(customers):
        base_uptake = 0.12 + 0.02 * (c_index % 5)
        size = 900 + 300 * (c_index % 7)
        if marker_values and customer in marker_values:  # a size at which the marker is a plausible uptake
            size = int(marker_values[customer] / base_uptake)
        dept_sizes = {d: int(size * w) for d, w in zip(DEPARTMENTS, (0.2, 0.3, 0.2, 0.2, 0.08, 0.02))}
        dept_sizes["Small teams"] = 30  # always below the threshold: its cells are hidden
        site_sizes = {s: int(size * w) for s, w in zip(SITES, (0.5, 0.35, 0.15))}
        role_sizes = {r: int(size * w) for r, w in zip(ROLES, (0.15, 0.6, 0.25))}
        for dim, groups in (
            ("total", {"all": size}),
            ("department", dept_sizes),
            ("site", site_sizes),
            ("role", role_sizes),
        ):
            for g, hc in groups.items():
                hc_rows.append(
                    dict(customer_id=customer, as_of=date(2023, 1, 1), dimension=dim, group_value=g, headcount=hc)
                )
        for m_index, period in enumerate(months):
            release_id = f"{customer}-{period}-v1"
            created = datetime(2023, 2, 1) + timedelta(days=31 * m_index, hours=c_index)
            entry_id = _release(rel_rows, ledger_rows, entry_id, release_id, customer, period, "month", created, rho)
            season = 1 + 0.15 * math.sin(m_index / 12 * 2 * math.pi)
            for dim, groups in (
                ("total", {"all": size}),
                ("department", dept_sizes),
                ("site", site_sizes),
                ("role", role_sizes),
            ):
                for g, hc in groups.items():
                    engaged = base_uptake * season * hc + rng.gauss(0, sd)
                    if dim == "total" and marker_values and customer in marker_values and m_index == n_months - 1:
                        engaged = marker_values[customer]
                    shown = engaged >= 10 + 1.645 * sd
                    contacts = engaged * 2.6 + rng.gauss(0, 80)
                    for metric, value, half, ok in (
                        ("engaged_employees", engaged, 11.3, shown),
                        ("uptake_rate", engaged / hc, 11.3 / hc, shown),
                        ("contacts", contacts, 157.0, shown),
                    ):
                        cell_rows.append(_cell(release_id, customer, period, dim, g, metric, value, half, ok))
            if period[5:7] not in ("03", "06", "09", "12"):
                continue
            # The quarter ending this month: wellbeing, services and topics (the default cadence).
            quarter = f"{period[:4]}-Q{int(period[5:7]) // 3}"
            q_release = f"{customer}-{quarter}-v1"
            q_rho = 0.05
            entry_id = _release(
                rel_rows, ledger_rows, entry_id, q_release, customer, quarter, "quarter", created, q_rho
            )
            for dim, groups in (("total", {"all": size}), ("department", dept_sizes)):
                for g, hc in groups.items():
                    scorers = 0.3 * base_uptake * hc + rng.gauss(0, 4.0)
                    scorers_ok = scorers >= 10 + 1.645 * 4.0
                    wide = dim != "total" and hc < 250  # a small group's mean: too uncertain
                    for metric, value, half in (
                        ("who5_mean", 52 + 6 * math.cos(m_index / 6) + rng.gauss(0, 3), 4.0),
                        ("wellbeing_low_share", 0.35 + rng.gauss(0, 0.03), 0.06),
                        ("wellbeing_improved_share", 0.4 + rng.gauss(0, 0.04), 0.12),
                        ("satisfaction_mean", 4.1 + rng.gauss(0, 0.1), 0.2),
                    ):
                        row = _cell(q_release, customer, quarter, dim, g, metric, value, half, scorers_ok and not wide)
                        if scorers_ok and wide:
                            row["status"], row["reason"] = "too_uncertain", "its 95 % interval would be too wide"
                        cell_rows.append(row)
            for dim in ("site", "role"):
                alloc_rows.append(
                    dict(
                        release_id=q_release,
                        customer_id=customer,
                        period=quarter,
                        figure_set="wellbeing",
                        dimension=dim,
                        measured=False,
                        share=0.0,
                        reason="not measured: at this budget fewer than two groups could be shown",
                    )
                )
            total_engaged = base_uptake * season * size * 1.4  # a quarter's users
            for dim, keys, weights in (
                ("service", SERVICES, (0.35, 0.15, 0.3, 0.15, 0.05)),
                ("topic", TOPICS, (0.3, 0.12, 0.15, 0.1, 0.03, 0.1, 0.15, 0.05)),
            ):
                for g, w in zip(keys, weights):
                    value = total_engaged * w + rng.gauss(0, 6.2)
                    ok = value >= 10 + 1.645 * 6.2
                    cell_rows.append(_cell(q_release, customer, quarter, dim, g, "engaged_employees", value, 12.2, ok))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    con = duckdb.connect(str(path))
    con.execute(SCHEMA_SQL)
    frames = {
        "releases": rel_rows,
        "release_cells": cell_rows,
        "budget_ledger": ledger_rows,
        "public_headcount": hc_rows,
        "release_allocations": alloc_rows,
    }
    for table, rows in frames.items():
        frame = pl.DataFrame(rows, schema=published.polars_schema(table))
        con.register("incoming", frame)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        con.unregister("incoming")
    con.execute(
        "INSERT INTO policy_history BY NAME SELECT TIMESTAMP '2023-01-01' AS changed_at, 'setup' AS changed_by, "
        "'*' AS scope, 'k' AS key, NULL AS old_value, '10' AS new_value, 1 AS policy_version"
    )
    con.execute("CHECKPOINT")
    con.close()
    return path
