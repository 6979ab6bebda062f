"""Realistic synthetic raw tables (events, headcount) in an in-memory DuckDB, for privacy tests and timing.

The schema is the privacy library's input relations (``privacy.contract.INPUT_RELATIONS_DDL``,
which the raw store creates): ``events.employee`` is the integer surrogate id and each id gets a
``pseudonyms`` row (a stand-in hex digest, like ingest's HMAC; the raw store's table, never read
by ``privacy/``). Frames may carry string labels in ``employee`` (e.g. ``"newcomer"``): they are mapped to
ids with :func:`employee_id`. Test data only: numpy draws here build fixtures, never a release.
"""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import numpy as np
import polars as pl

from privacy.contract import INPUT_RELATIONS_DDL, SERVICES, TOPICS

# The raw store's pseudonyms table (pipeline.raw_store.RAW_DDL); privacy/ never reads it.
PSEUDONYMS_DDL = "CREATE TABLE IF NOT EXISTS pseudonyms (employee BIGINT PRIMARY KEY, pseudonym VARCHAR NOT NULL)"

SITES = ("London", "Leeds", "Cardiff", "Oban")


def employee_id(label: str) -> int:
    """Deterministic surrogate id for a string label (2**61 and up: apart from the generated ids)."""
    digest = int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest()[:8], "big")
    return (1 << 61) | (digest & ((1 << 61) - 1))


def customer_employee_base(customer: str) -> int:
    """First id of ``customer``'s generated employees (id = base + index; room for 2**24 per customer)."""
    digest = int.from_bytes(hashlib.sha256(customer.encode("utf-8")).digest()[:4], "big")
    return (digest % (1 << 28) + 1) << 24


def raw_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(INPUT_RELATIONS_DDL)
    con.execute(PSEUDONYMS_DDL)
    return con


def org(n_departments: int = 24, employees: int = 20_000, seed: int = 0) -> pl.DataFrame:
    """Headcount rows (site, department, role, headcount); a few departments smaller than 10."""
    rng = np.random.default_rng(seed)
    rows = []
    weights = rng.pareto(1.2, n_departments) + 0.05
    sizes = np.maximum((weights / weights.sum() * employees).astype(int), 3)
    sizes[-3:] = [4, 6, 8]  # small teams
    for d, size in enumerate(sizes):
        site = SITES[d % len(SITES)] if d < n_departments - 1 else "Oban"
        for role, share in (("staff", 0.7), ("manager", 0.2), ("clinician", 0.1)):
            n = int(round(size * share))
            if n:
                rows.append((site, f"Dept {d:02d}", role, n))
    return pl.DataFrame(rows, schema=["site", "department", "role", "headcount"], orient="row")


def insert_headcount(con, customer: str, hc: pl.DataFrame, as_of: date = date(2024, 1, 1)) -> None:
    df = hc.with_columns(customer_id=pl.lit(customer), as_of=pl.lit(as_of), delivery_id=pl.lit(1, pl.Int64))
    con.register("_hc", df)
    con.execute(
        "INSERT INTO headcount SELECT customer_id, site, department, role, headcount, as_of, delivery_id FROM _hc"
    )
    con.unregister("_hc")


def events_for_month(
    customer: str,
    hc: pl.DataFrame,
    year: int,
    month: int,
    *,
    engaged_share: float = 0.15,
    seed: int = 0,
    mean_contacts: float = 6.7,
) -> pl.DataFrame:
    """About ``engaged_share`` of employees with heavy-tailed contacts in one month."""
    rng = np.random.default_rng(seed)
    people = hc.select(
        pl.col("site").repeat_by("headcount").explode(),
        pl.col("department").repeat_by("headcount").explode(),
        pl.col("role").repeat_by("headcount").explode(),
    )
    n = people.height
    emp_ids = customer_employee_base(customer) + np.arange(n, dtype=np.int64)
    engaged = rng.random(n) < engaged_share
    idx = np.flatnonzero(engaged)
    counts = np.minimum(rng.geometric(1 / mean_contacts, idx.size), 80)
    ev_emp = np.repeat(idx, counts)
    m = ev_emp.size
    days = rng.integers(1, 29, m)
    who5 = rng.integers(0, 26, m).astype(float)
    who5[rng.random(m) < 0.6] = np.nan
    sat = rng.integers(1, 6, m).astype(float)
    sat[rng.random(m) < 0.5] = np.nan
    topic = np.array(TOPICS + (None,), dtype=object)[rng.integers(0, len(TOPICS) + 1, m)]
    return pl.DataFrame(
        {
            "event_id": [f"{customer}-{year}{month:02d}-{i}" for i in range(m)],
            "customer_id": customer,
            "employee": emp_ids[ev_emp],
            "site": people["site"].to_numpy()[ev_emp],
            "department": people["department"].to_numpy()[ev_emp],
            "role": people["role"].to_numpy()[ev_emp],
            "service": np.array(SERVICES)[rng.integers(0, len(SERVICES), m)],
            "occurred_on": [date(year, month, int(d)) for d in days],
            "duration_min": rng.integers(10, 90, m),
            "who5_raw": pl.Series(who5).fill_nan(None).cast(pl.Int8),
            "satisfaction": pl.Series(sat).fill_nan(None).cast(pl.Int8),
            "topic": topic,
        }
    )


def insert_events(con, events: pl.DataFrame) -> None:
    """Insert events (string ``employee`` labels become :func:`employee_id`) and their pseudonyms rows."""
    if events.schema["employee"] == pl.String:
        labels = events["employee"].unique().to_list()
        ids = pl.DataFrame(
            {"employee": labels, "_id": [employee_id(x) for x in labels]},
            schema={"employee": pl.String, "_id": pl.Int64},
        )
        events = events.join(ids, on="employee", how="left").with_columns(pl.col("_id").alias("employee")).drop("_id")
    con.register("_ev", events)
    con.execute(
        """INSERT INTO pseudonyms SELECT employee, sha256('synthetic-' || employee)
           FROM (SELECT DISTINCT employee FROM _ev) WHERE employee NOT IN (SELECT employee FROM pseudonyms)"""
    )
    con.execute(
        """INSERT INTO events SELECT event_id, customer_id, employee, site, department, role, service, occurred_on,
           duration_min, who5_raw, satisfaction, topic, 1, TIMESTAMP '2024-01-01' FROM _ev"""
    )
    con.unregister("_ev")


# -- the tiny organisation used by most unit tests ------------------------------
TINY_HEADCOUNT = pl.DataFrame(
    [
        ("A", "Ops", "staff", 40),
        ("A", "Sales", "staff", 30),
        ("B", "Legal", "staff", 20),
        ("B", "Empty", "staff", 15),  # public, but nobody in it uses the service
        ("B", "Tiny", "staff", 3),  # < k: rolled up, still < k: totals only
    ],
    schema=["site", "department", "role", "headcount"],
    orient="row",
)
# department -> engaged employees in 2025-03 (site from the headcount)
TINY_ENGAGED = {"Ops": 25, "Sales": 15, "Legal": 5, "Tiny": 2, "Ghost": 3}
TINY_SITE = {"Ops": "A", "Sales": "A", "Legal": "B", "Tiny": "B", "Ghost": "B"}
TINY_DEPT_CODE = {"Ops": 1, "Sales": 2, "Legal": 3, "Tiny": 4, "Ghost": 5}


def tiny_employee(department: str, i: int) -> int:
    """Surrogate id of tiny employee ``i`` of ``department``: 1000 x department code + i (Ghost: 5000-5002)."""
    return TINY_DEPT_CODE[department] * 1000 + i


def tiny_events(extra: list[dict] | None = None) -> pl.DataFrame:
    """Deterministic events: employee i of department D has (i % 4) + 1 contacts, scores on even i.

    ``extra`` rows may name their employee with a string label (mapped by :func:`employee_id`).
    """
    rows = []
    for dept, n in TINY_ENGAGED.items():
        for i in range(n):
            emp = f"{dept.lower()}-{i:03d}"
            for j in range(i % 4 + 1):
                rows.append(
                    dict(
                        event_id=f"{emp}-{j}",
                        customer_id="tiny",
                        employee=tiny_employee(dept, i),
                        site=TINY_SITE[dept],
                        department=dept,
                        role="staff",
                        service=["one_to_one", "app", "group"][j % 3],
                        occurred_on=date(2025, 3, 1 + j),
                        duration_min=30,
                        who5_raw=(10 + j) if i % 2 == 0 else None,
                        satisfaction=(4 if j == 0 else None) if i % 3 == 0 else None,
                        topic="stress" if j % 2 == 0 else None,
                    )
                )
    for row in extra or []:
        label = row.get("employee")
        rows.append(dict(row, employee=employee_id(label)) if isinstance(label, str) else row)
    return pl.DataFrame(rows, schema_overrides={"employee": pl.Int64, "who5_raw": pl.Int8, "satisfaction": pl.Int8})


def newcomer_events(customer: str = "tiny", prefix: str = "n") -> list[dict]:
    """One extra employee ('newcomer') with 200 events everywhere: the neighbouring dataset of the DP tests."""
    return [
        dict(
            event_id=f"{prefix}-{j}",
            customer_id=customer,
            employee="newcomer",
            site="A",
            department="Ops",
            role="staff",
            service=SERVICES[j % 5],
            occurred_on=date(2025, 3, 1 + j % 28),
            duration_min=30,
            who5_raw=25 - j % 20,
            satisfaction=5,
            topic=TOPICS[j % 8],
        )
        for j in range(200)
    ]


def make_tiny(extra: list[dict] | None = None):
    con = raw_connection()
    insert_headcount(con, "tiny", TINY_HEADCOUNT, as_of=date(2025, 1, 1))
    insert_events(con, tiny_events(extra))
    return con


def tiny_policy(**updates: object):
    """The default policy at the top of the ε range, with planning assumptions that fit the tiny organisation.

    Its staff use the service a lot (25 of Ops' 40 in March). With the defaults (ε = 8, 3 %
    monthly uptake) no breakdown of a 108-person organisation can be informative, so the plan
    measures the total only; tests of breakdown cells use this policy.
    """
    from privacy.policy import DEFAULT_POLICY, apply_policy_updates

    base = {"epsilon_annual": 20.0, "assumptions.monthly_uptake": 0.6, "assumptions.quarterly_uptake": 0.7}
    return apply_policy_updates(DEFAULT_POLICY, {**base, **updates})


def noiseless(policy):
    """``policy`` with a cap so large that the discrete Gaussian draws 0: a release's outputs are its true aggregates.

    For tests of what a release computes (the same plan and structure, noise scales ≈ 0.001).
    """
    from privacy.budget import Rho
    from privacy.policy import ReleasePolicy

    class _Noiseless(ReleasePolicy):
        @property
        def cap(self) -> Rho:
            return Rho(1e12)

    return _Noiseless(**policy.model_dump())


def prepare_release(con, customer: str, policy, period: str):
    """The public plan and the reduced frame of one customer-period, as a release computes them."""
    from privacy.periods import parse_period
    from privacy.plan import plan_release
    from privacy.reduce import reduce_period
    from privacy.structure import load_structure

    structure = load_structure(con, customer, period, policy.k)
    plan = plan_release(policy, period, structure)
    frame = reduce_period(
        con,
        customer,
        parse_period(period),
        plan.bounds,
        structure.key_map,
        with_services="services" in plan.tables,
        with_topics="topics" in plan.tables,
    )
    return frame, plan, structure
