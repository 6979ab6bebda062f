"""Synthetic provider exports and customer headcount files (data contract v1).

This is **test data only**. It uses numpy's *seeded* ``Generator`` so that the
same arguments always give the same bytes; that is allowed here because nothing
in this module is part of the privacy path (no released number and no noise of a
release ever comes from it). Real releases draw their noise through OpenDP only.

What is generated (all vectorised numpy/polars, no per-row Python loops):

- ``customers`` employers with slugs such as ``acme-moderation``; sizes vary
  around ``employees`` (the average number of distinct employees per customer,
  leavers and joiners included; monthly headcount is a little lower).
- Per customer: 2–4 sites (city names), 4–7 large departments and 2–3
  departments with fewer than 10 people (``Legal``, ``Executive Office``, ...),
  roles ``moderator``, ``team_lead``, ``quality``, ``support``; ~18 % of
  employees join or leave during the period.
- About 15 % of employees ever engage (customers differ by up to ±30 % of that). Contacts per engaged
  employee are heavy-tailed: most have 1–5, ~2.5 % are heavy users with 50+.
  Episodes centre on months drawn with seasonal weights (peaks in January and October–November,
  trough in July–August).
- Services: ``one_to_one`` and ``app`` common, ``group``/``webinar`` less so,
  ``crisis_support`` rare (~2 %); durations per service (``app`` is often 0).
- WHO-5 raw (0–25) starts low for people seeking help and rises with each prior
  ``one_to_one`` session for ~65 % of clients (responders), with noise; recorded
  on most one-to-one contacts, rarely elsewhere. Satisfaction 1–5, mostly 4–5.
  Topics from the contract list with plausible weights and a per-client main topic.
- ``client_ref`` like ``C-00012345`` (opaque, unique per employee), ``event_id``
  like ``EV-0123456789`` (unique across the export).
- One headcount file per customer (always CSV, as HR spreadsheets are): headcount
  per (site, department, role) for every month ``as_of`` ('YYYY-MM') in range;
  every event's site/department/role exists in it for the event's month.

Shapes (``shape``): ``narrow`` (above, the default) and ``wide`` (issue 12: organisations no
one tuned for): sizes log-normal with σ = 1 around ``employees``, 1-6 sites and 5-40
departments per customer (Dirichlet weights, so several departments are small), six roles,
about 15 % engaging, contacts per engaged employee from a Zipf law of exponent 1.7 truncated
at 500 (those with 25 or more spread over their tenure).

Formats: CSV (ISO dates, empty = missing), Parquet (typed: ``occurred_on`` DATE,
integers INT16/INT8) and JSON Lines. The export is ordered by ``occurred_on`` (in random
order with ``shuffle=True``, as a real export may come);
``shards`` splits it into that many contiguous files (same rows as one file).

``dirty=True`` (documented mix, also in ``benchmarks/README.md``): about 2 % of
export rows are corrupted, one rule per row, in these shares of all rows:

- ``bad_date`` 0.25 %: ``2025-13-01``, ``31/01/2025``, ``2025-02-30``, ``yesterday``
- ``who5_out_of_range`` 0.25 %: ``26``, ``-1``, ``40``
- ``duration_out_of_range`` 0.25 %: ``-5``, ``481``, ``9999``
- ``satisfaction_out_of_range`` 0.25 %: ``0``, ``6``, ``10``
- ``unknown_service`` 0.25 %: ``phone_call``, ``chat``, ``massage``
- ``unknown_topic`` 0.25 %: ``finance``, ``politics``, ``diet``
- ``empty_client_ref`` 0.25 %: empty string
- ``non_integer`` 0.25 %: ``abc``, ``4.5``, ``five`` in duration/who5/satisfaction

(at least one row per category). In dirty mode the columns ``occurred_on``,
``duration_min``, ``who5_raw`` and ``satisfaction`` are written as text in every
format, so the bad values can be represented. A second file
``provider-export-redelivery.<ext>`` re-delivers ~10 % of the clean events (same
``event_id``); ~30 % of those carry corrected values (satisfaction, duration or
topic changed) — the later delivery should replace the earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from privacy.contract import (
    EVENT_COLUMN_NAMES,
    HEADCOUNT_COLUMN_NAMES,
    SERVICES,
    TOPICS,
)

Format = Literal["csv", "parquet", "jsonl"]
FORMATS: tuple[str, ...] = ("csv", "parquet", "jsonl")

# ---------------------------------------------------------------- vocabulary
CUSTOMER_PREFIXES = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "monarch",
    "aperture",
    "oscorp",
    "stark",
    "wayne",
    "duff",
    "gringotts",
    "piedpiper",
    "massive",
    "nakatomi",
)
CUSTOMER_SUFFIXES = ("moderation", "trust-safety", "support", "review", "ops")
CITIES = (
    "Lisbon",
    "Dublin",
    "Manila",
    "Berlin",
    "Nairobi",
    "Bogota",
    "Krakow",
    "Austin",
    "Hyderabad",
    "Athens",
    "Barcelona",
    "Accra",
    "Cebu",
    "Riga",
    "Porto",
    "Essen",
)
# (name, kind) kind: 0 = moderation operations, 1 = quality, 2 = support function
OPS_DEPARTMENTS = (("Content Review", 0), ("Escalations", 0))
OTHER_DEPARTMENTS = (
    ("Quality Assurance", 1),
    ("Policy", 2),
    ("Workforce Management", 2),
    ("Training", 2),
    ("People Operations", 2),
    ("IT Support", 2),
    ("Finance", 2),
    ("Facilities", 2),
)
SMALL_DEPARTMENTS = ("Legal", "Executive Office", "Data Protection", "Wellbeing Team")
ROLES = ("moderator", "team_lead", "quality", "support")
# The wide shape (issue 12): organisations nobody tuned for. 6 roles, 1-6 sites, 5-40 departments.
WIDE_ROLES = ("moderator", "team_lead", "quality", "support", "analyst", "manager")
WIDE_DEPARTMENT_BASES = tuple(name for name, _ in (*OPS_DEPARTMENTS, *OTHER_DEPARTMENTS)) + SMALL_DEPARTMENTS
WIDE_SITES = (1, 6)  # inclusive
WIDE_DEPARTMENTS = (5, 40)  # inclusive
WIDE_SIZE_SIGMA = 1.0  # log-normal sizes (sigma of the log)
WIDE_ZIPF_EXPONENT = 1.7  # contacts per engaged employee: truncated Zipf
WIDE_ZIPF_MAX = 500
WIDE_HEAVY_FROM = 25  # engaged employees with this many contacts or more keep a steady pace
Shape = Literal["narrow", "wide"]
SHAPES: tuple[str, ...] = ("narrow", "wide")
ROLE_PROBS_BY_KIND = np.array(
    [
        [0.82, 0.08, 0.06, 0.04],  # operations
        [0.10, 0.10, 0.75, 0.05],  # quality
        [0.00, 0.15, 0.05, 0.80],  # support functions
    ]
)

# Calendar-month weights of episode starts (Jan .. Dec): January and autumn peaks.
SEASON = np.array([1.9, 1.1, 1.0, 0.95, 0.9, 0.8, 0.6, 0.6, 1.0, 1.45, 1.5, 0.65])

ENGAGEMENT_RATE = 0.15
HEAVY_USER_SHARE = 0.025
# services in contract order: one_to_one, group, app, webinar, crisis_support
SERVICE_PROBS = np.array(
    [
        [0.56, 0.10, 0.18, 0.13, 0.03],  # clients seeking counselling
        [0.05, 0.04, 0.80, 0.10, 0.01],  # app-first clients
    ]
)
WHO5_RECORDED = np.array([0.85, 0.40, 0.25, 0.0, 0.30])
SATISFACTION_RECORDED = np.array([0.65, 0.60, 0.30, 0.45, 0.50])
SATISFACTION_PROBS = np.array([0.03, 0.05, 0.12, 0.35, 0.45])
# topics in contract order: stress, burnout, anxiety, low_mood, trauma_exposure, relationships, work_life, other
TOPIC_PROBS = np.array([0.24, 0.12, 0.16, 0.13, 0.10, 0.08, 0.12, 0.05])
TOPIC_MISSING = np.array([0.05, 0.10, 0.35, 0.30, 0.10])

# Dirty mode: (category, column, share of all export rows, bad values written as text).
DIRTY_MIX: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    ("bad_date", "occurred_on", 0.0025, ("2025-13-01", "31/01/2025", "2025-02-30", "yesterday")),
    ("who5_out_of_range", "who5_raw", 0.0025, ("26", "-1", "40")),
    ("duration_out_of_range", "duration_min", 0.0025, ("-5", "481", "9999")),
    ("satisfaction_out_of_range", "satisfaction", 0.0025, ("0", "6", "10")),
    ("unknown_service", "service", 0.0025, ("phone_call", "chat", "massage")),
    ("unknown_topic", "topic", 0.0025, ("finance", "politics", "diet")),
    ("empty_client_ref", "client_ref", 0.0025, ("",)),
    ("non_integer", "duration_min", 0.00084, ("abc", "4.5", "five")),
    ("non_integer", "who5_raw", 0.00083, ("abc", "4.5", "five")),
    ("non_integer", "satisfaction", 0.00083, ("abc", "4.5", "five")),
)
DIRTY_TEXT_COLUMNS = ("occurred_on", "duration_min", "who5_raw", "satisfaction")
REDELIVERY_SHARE = 0.10
REDELIVERY_CHANGED_SHARE = 0.30

_CLIENT_SPACE = 10**8  # C-00000000 .. C-99999999
_EVENT_SPACE = 10**10  # EV-0000000000 ..
_CLIENT_MULT = 7_654_321  # coprime with 10**8: an opaque bijection of the employee index
_EVENT_MULT = 3_141_592_653  # coprime with 10**10


@dataclass(frozen=True)
class GeneratedFiles:
    """What :func:`generate` wrote.

    ``events`` lists the export shards, then (dirty mode) the re-delivery file;
    ``n_events`` counts the rows of the primary export (re-delivery excluded);
    ``dirty_rows`` counts corrupted rows in the primary export (0 when clean).
    """

    events: list[Path]
    headcounts: list[Path]
    n_events: int
    customers: tuple[str, ...]
    dirty_rows: int


def customer_ids(n: int) -> tuple[str, ...]:
    """Deterministic, distinct slugs such as ``acme-moderation``."""
    out = []
    for i in range(n):
        prefix = CUSTOMER_PREFIXES[i % len(CUSTOMER_PREFIXES)]
        rnd = i // len(CUSTOMER_PREFIXES)
        suffix = CUSTOMER_SUFFIXES[(i + rnd) % len(CUSTOMER_SUFFIXES)]
        slug = f"{prefix}-{suffix}"
        if rnd >= len(CUSTOMER_SUFFIXES):
            slug += f"-{rnd}"
        out.append(slug)
    return tuple(out)


def _parse_start(start: str) -> np.datetime64:
    try:
        month = np.datetime64(start, "M")
    except ValueError:
        raise ValueError(f"start={start!r}: use YYYY-MM, e.g. 2025-01") from None
    if len(start) != 7 or str(month) != start:
        raise ValueError(f"start={start!r}: use YYYY-MM, e.g. 2025-01")
    return month


def _pick(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray | None = None, size: int = 0) -> np.ndarray:
    """Vectorised categorical draw: one index per row of ``probs[rows]`` (or ``size`` draws of ``probs``)."""
    cum = np.cumsum(probs, axis=-1)
    cum /= cum[..., -1:]
    if rows is None:
        return np.searchsorted(cum, rng.random(size), side="right").clip(0, probs.shape[-1] - 1)
    u = rng.random(len(rows))
    table = cum[rows]
    return (u[:, None] >= table).sum(axis=1).clip(0, probs.shape[-1] - 1)


@dataclass
class _Customer:
    """Arrays of one customer (codes index into the name tuples)."""

    sites: tuple[str, ...]
    departments: tuple[str, ...]
    roles: tuple[str, ...]
    # employees
    emp_site: np.ndarray
    emp_dept: np.ndarray
    emp_role: np.ndarray
    hire: np.ndarray
    leave: np.ndarray
    # events (local employee index, month index, date as days since epoch, ...)
    ev_emp: np.ndarray
    ev_date: np.ndarray
    ev_service: np.ndarray
    ev_duration: np.ndarray
    ev_who5: np.ndarray  # -1 = missing
    ev_satisfaction: np.ndarray  # -1 = missing
    ev_topic: np.ndarray  # -1 = missing


def _narrow_structure(
    rng: np.random.Generator, n_emp: int
) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, int]:
    """The project's own shape: 2-4 sites, 4-7 large and 2-3 small departments, 4 roles."""
    n_sites = int(rng.integers(2, 5))
    site_idx = rng.choice(len(CITIES), n_sites, replace=False)
    sites = tuple(CITIES[i] for i in site_idx)
    site_w = rng.dirichlet(np.full(n_sites, 3.0))
    n_other = int(rng.integers(2, 6))
    other_idx = np.sort(rng.choice(len(OTHER_DEPARTMENTS), n_other, replace=False))
    big = list(OPS_DEPARTMENTS) + [OTHER_DEPARTMENTS[i] for i in other_idx]
    n_small = int(rng.integers(2, 4))
    small = tuple(SMALL_DEPARTMENTS[i] for i in np.sort(rng.choice(len(SMALL_DEPARTMENTS), n_small, replace=False)))
    departments = tuple(name for name, _ in big) + small
    big_kind = np.array([kind for _, kind in big])
    big_w = np.concatenate([[0.55, 0.12], rng.dirichlet(np.full(n_other, 2.0)) * 0.33])

    small_sizes = rng.integers(3, 10, n_small)
    small_sizes = np.minimum(small_sizes, max(1, n_emp // 20))
    n_in_small = int(small_sizes.sum())
    n_big = n_emp - n_in_small
    dept_big = _pick(rng, big_w, size=n_big)
    emp_dept = np.concatenate([dept_big, np.repeat(len(big) + np.arange(n_small), small_sizes)])
    emp_site = np.concatenate([_pick(rng, site_w, size=n_big), np.zeros(n_in_small, dtype=np.int64)])
    kinds = np.concatenate([big_kind[dept_big], np.full(n_in_small, 2)])
    emp_role = _pick(rng, ROLE_PROBS_BY_KIND, rows=kinds)

    return sites, departments, emp_site, emp_dept, emp_role, n_big


def _zipf_counts(rng: np.random.Generator, size: int, exponent: float, upper: int) -> np.ndarray:
    """``size`` draws of a Zipf law truncated to 1..``upper`` (P(n) ∝ n^-exponent), by inverse CDF."""
    pmf = np.arange(1, upper + 1, dtype=np.float64) ** -exponent
    cum = np.cumsum(pmf)
    cum /= cum[-1]
    return (np.searchsorted(cum, rng.random(size), side="right") + 1).clip(1, upper).astype(np.int64)


def _wide_structure(
    rng: np.random.Generator, n_emp: int
) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Sites, departments and each employee's (site, department, role) of one wide-shape customer.

    1-6 sites, 5-40 departments (Dirichlet weights with a small concentration, so several are
    small and get rolled up), the six :data:`WIDE_ROLES` with customer-specific weights.
    """
    n_sites = int(rng.integers(WIDE_SITES[0], WIDE_SITES[1] + 1))
    sites = tuple(CITIES[i] for i in rng.choice(len(CITIES), n_sites, replace=False))
    n_depts = int(rng.integers(WIDE_DEPARTMENTS[0], WIDE_DEPARTMENTS[1] + 1))
    bases = WIDE_DEPARTMENT_BASES
    perm = rng.permutation(len(bases))
    departments = tuple(
        bases[perm[i % len(bases)]] + ("" if i < len(bases) else f" {i // len(bases) + 1}") for i in range(n_depts)
    )
    emp_site = _pick(rng, rng.dirichlet(np.full(n_sites, 3.0)), size=n_emp)
    emp_dept = _pick(rng, rng.dirichlet(np.full(n_depts, 0.8)), size=n_emp)
    emp_role = _pick(rng, rng.dirichlet(np.array([8.0, 1.5, 2.0, 2.0, 1.2, 1.0]) * 2), size=n_emp)
    return sites, departments, emp_site, emp_dept, emp_role


def _customer(
    seed: int, index: int, n_emp: int, months: int, month_start: np.ndarray, cal_month: np.ndarray, rate: float,
    shape: str = "narrow",
) -> _Customer:  # fmt: skip
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1 + index]))
    if shape == "wide":
        sites, departments, emp_site, emp_dept, emp_role = _wide_structure(rng, n_emp)
        roles: tuple[str, ...] = WIDE_ROLES
        n_big = n_emp
    else:
        sites, departments, emp_site, emp_dept, emp_role, n_big = _narrow_structure(rng, n_emp)
        roles = ROLES
    # --- tenure: [hire, leave) in month indices; small departments stay the whole period
    if months > 1:
        hire = np.where(rng.random(n_emp) < 0.9, 0, rng.integers(1, months, n_emp))
        leave = np.where(rng.random(n_emp) < 0.9, months, rng.integers(hire + 1, months + 1))
    else:
        hire = np.zeros(n_emp, dtype=np.int64)
        leave = np.ones(n_emp, dtype=np.int64)
    hire[n_big:] = 0
    leave[n_big:] = months

    # --- who engages, how much, when
    engaged = rng.random(n_emp) < rate
    eidx = np.flatnonzero(engaged)
    k = len(eidx)
    e_hire, e_leave = hire[eidx], leave[eidx]
    if shape == "wide":  # sessions per engaged employee: truncated Zipf, heavy users keep a steady pace
        n_contacts = _zipf_counts(rng, k, WIDE_ZIPF_EXPONENT, WIDE_ZIPF_MAX)
        heavy = n_contacts >= WIDE_HEAVY_FROM
    else:
        heavy = rng.random(k) < HEAVY_USER_SHARE
        scale = months / 12
        base_n = np.ceil(np.exp(rng.normal(0.7 + 0.5 * np.log(scale), 0.95, k)))
        # heavy users (daily app users, long therapy) keep their pace: contacts scale with tenure
        heavy_n = np.ceil((50 + np.exp(rng.normal(3.2, 0.8, k)) * scale) * (e_leave - e_hire) / months)
        n_contacts = np.where(heavy, heavy_n, base_n).clip(1, 25 * months).astype(np.int64)
    app_first = np.where(heavy, rng.random(k) < 0.8, rng.random(k) < 0.35).astype(np.int64)

    weights = np.concatenate([[0.0], np.cumsum(SEASON[cal_month])])
    target = weights[e_hire] + rng.random(k) * (weights[e_leave] - weights[e_hire])
    start = (np.searchsorted(weights, target, side="right") - 1).clip(e_hire, e_leave - 1)

    baseline = np.where(app_first == 1, rng.normal(13.0, 4.0, k), rng.normal(9.0, 3.5, k))
    responder = rng.random(k) < 0.65
    slope = np.where(responder, rng.uniform(0.6, 1.4, k), rng.uniform(-0.2, 0.2, k))
    main_topic = _pick(rng, TOPIC_PROBS, size=k)

    # --- events, grouped by employee then in date order
    ev_e = np.repeat(np.arange(k), n_contacts)  # index into the engaged arrays
    n_ev = len(ev_e)
    # Contacts cluster around the episode month (two-sided geometric spread); the window
    # [hire, leave) wraps around so edge months get the carry-over a real year would have.
    span = (e_leave - e_hire)[ev_e]
    spread = rng.geometric(0.7, n_ev) - rng.geometric(0.7, n_ev)
    uni = (rng.random(n_ev) * span).astype(np.int64)
    rel = np.where(heavy[ev_e], uni, start[ev_e] - e_hire[ev_e] + spread) % span
    month = e_hire[ev_e] + rel
    days_in = (month_start[1:] - month_start[:-1])[month]
    date = month_start[month] + (rng.random(n_ev) * days_in).astype(np.int64)
    order = np.lexsort((date, ev_e))
    date = date[order]  # ev_e is already grouped, so only dates move

    service = _pick(rng, SERVICE_PROBS, rows=app_first[ev_e])
    duration = np.select(
        [service == 0, service == 1, service == 2, service == 3],
        [
            rng.normal(50, 8, n_ev).round().clip(20, 120),
            rng.normal(75, 15, n_ev).round().clip(30, 180),
            np.where(rng.random(n_ev) < 0.5, 0, np.ceil(rng.exponential(8, n_ev)).clip(1, 120)),
            np.array([30, 45, 60])[rng.integers(0, 3, n_ev)],
        ],
        default=rng.normal(40, 20, n_ev).round().clip(10, 240),
    ).astype(np.int16)

    # WHO-5 rises with each earlier one-to-one session for responders
    is_121 = (service == 0).astype(np.int64)
    before = np.cumsum(is_121) - is_121
    first = np.concatenate([[0], np.cumsum(n_contacts)[:-1]])
    before = before - np.repeat(before[first] if n_ev else before, n_contacts)
    who5 = (baseline[ev_e] + slope[ev_e] * np.minimum(before, 12) + rng.normal(0, 2.0, n_ev)).round().clip(0, 25)
    who5 = np.where(rng.random(n_ev) < WHO5_RECORDED[service], who5, -1).astype(np.int16)
    satisfaction = np.where(
        rng.random(n_ev) < SATISFACTION_RECORDED[service], _pick(rng, SATISFACTION_PROBS, size=n_ev) + 1, -1
    ).astype(np.int16)
    topic = np.where(rng.random(n_ev) < 0.7, main_topic[ev_e], _pick(rng, TOPIC_PROBS, size=n_ev))
    topic = np.where(rng.random(n_ev) < TOPIC_MISSING[service], -1, topic).astype(np.int16)

    return _Customer(
        sites=sites,
        departments=departments,
        roles=roles,
        emp_site=emp_site,
        emp_dept=emp_dept,
        emp_role=emp_role,
        hire=hire,
        leave=leave,
        ev_emp=eidx[ev_e],
        ev_date=date,
        ev_service=service,
        ev_duration=duration,
        ev_who5=who5,
        ev_satisfaction=satisfaction,
        ev_topic=topic,
    )


def _strings(names: list[str] | tuple[str, ...], codes: np.ndarray, name: str) -> pl.Series:
    """Gather names by code (code -1 gives null) without a Python loop over rows."""
    lookup = pl.Series(name, list(names), dtype=pl.String)
    idx = pl.Series(np.where(codes < 0, 0, codes).astype(np.uint32))
    out = lookup.gather(idx)
    if (codes < 0).any():
        out = pl.select(pl.when(pl.lit(pl.Series(codes >= 0))).then(out).otherwise(None)).to_series()
    return out.rename(name)


def _ids(prefix: str, index: np.ndarray, mult: int, add: int, space: int, width: int, name: str) -> pl.Series:
    code = (index.astype(np.int64) * mult + add) % space
    return pl.select((pl.lit(prefix) + pl.Series(code).cast(pl.String).str.zfill(width)).alias(name)).to_series()


def _headcount_frame(cid: str, cust: _Customer, months: int, month_labels: list[str]) -> pl.DataFrame:
    n_roles = len(cust.roles)
    n_depts = len(cust.departments)
    cell = (cust.emp_site * n_depts + cust.emp_dept) * n_roles + cust.emp_role
    n_cells = len(cust.sites) * n_depts * n_roles
    delta = np.zeros((n_cells, months + 1), dtype=np.int64)
    np.add.at(delta, (cell, cust.hire), 1)
    np.add.at(delta, (cell, cust.leave), -1)
    counts = np.cumsum(delta, axis=1)[:, :months]
    c_idx, m_idx = np.nonzero(counts)
    site = c_idx // (n_depts * n_roles)
    dept = (c_idx // n_roles) % n_depts
    role = c_idx % n_roles
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series([cid], dtype=pl.String).gather(np.zeros(len(c_idx), dtype=np.uint32)),
            "site": _strings(cust.sites, site, "site"),
            "department": _strings(cust.departments, dept, "department"),
            "role": _strings(cust.roles, role, "role"),
            "headcount": counts[c_idx, m_idx].astype(np.int32),
            "as_of": _strings(month_labels, m_idx, "as_of"),
        }
    )
    return frame.sort(["as_of", "site", "department", "role"]).select(HEADCOUNT_COLUMN_NAMES)


def _corrupt(frame: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray]:
    """Apply :data:`DIRTY_MIX` (one rule per chosen row); text columns so bad values fit."""
    n = frame.height
    counts = [max(1, round(share * n)) for _, _, share, _ in DIRTY_MIX]
    total = min(sum(counts), n)
    counts = [min(c, max(0, total - sum(counts[:i]))) for i, c in enumerate(counts)]
    rows = rng.choice(n, total, replace=False)
    rule = np.full(n, -1, dtype=np.int16)
    bad = np.full(n, -1, dtype=np.int16)
    pos = 0
    for r, ((_, _, _, values), c) in enumerate(zip(DIRTY_MIX, counts)):
        chosen = rows[pos : pos + c]
        pos += c
        rule[chosen] = r
        bad[chosen] = rng.integers(0, len(values), len(chosen))
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in DIRTY_TEXT_COLUMNS)
    rule_s, bad_s = pl.Series(rule), pl.Series(bad)
    exprs = []
    for column in EVENT_COLUMN_NAMES:
        expr = pl.col(column)
        touched = False
        for r, (_, col, _, values) in enumerate(DIRTY_MIX):
            if col != column:
                continue
            touched = True
            value = pl.lit(pl.Series(values, dtype=pl.String)).gather(bad_s.clip(0, len(values) - 1))
            expr = pl.when(rule_s == r).then(value).otherwise(expr)
        if touched:
            exprs.append(expr.alias(column))
    return frame.with_columns(exprs), rule >= 0


def _redelivery(clean: pl.DataFrame, dirty_mask: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """~10 % of the clean events again, ~30 % of them with corrected values."""
    candidates = np.flatnonzero(~dirty_mask)
    size = min(len(candidates), max(1, round(REDELIVERY_SHARE * clean.height)))
    take = np.sort(rng.choice(candidates, size, replace=False))
    again = clean[take]
    m = again.height
    change = rng.random(m) < REDELIVERY_CHANGED_SHARE
    what = rng.integers(0, 3, m)
    new_sat = pl.Series(rng.integers(1, 6, m).astype(np.int8))
    new_dur = pl.Series(rng.integers(1, 11, m).astype(np.int16))
    new_topic = _strings(TOPICS, rng.integers(0, len(TOPICS), m), "topic")
    ch = pl.Series(change)
    w = pl.Series(what)
    return again.with_columns(
        satisfaction=pl.when(ch & (w == 0)).then(new_sat).otherwise(pl.col("satisfaction")),
        duration_min=pl.when(ch & (w == 1))
        .then((pl.col("duration_min") + new_dur).clip(0, 480))
        .otherwise(pl.col("duration_min")),
        topic=pl.when(ch & (w == 2)).then(new_topic).otherwise(pl.col("topic")),
    )


def _write(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.write_csv(path)
    elif fmt == "parquet":
        frame.write_parquet(path, compression="zstd", statistics=True)
    else:
        frame.write_ndjson(path)


def build_frames(
    *,
    customers: int = 3,
    employees: int = 1500,
    months: int = 12,
    seed: int = 7,
    start: str = "2025-01",
    shape: Shape = "narrow",
    shuffle: bool = False,
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The clean export (typed, ordered by date, or in random order with ``shuffle``) and one
    headcount frame per customer, in memory. ``shape``: ``'narrow'`` (the project's own) or
    ``'wide'`` (issue 12: log-normal sizes with σ = 1, 1-6 sites, 5-40 departments, 6 roles,
    contacts per engaged employee from a Zipf law of exponent 1.7 truncated at 500)."""
    if customers < 1 or employees < 10 or months < 1:
        raise ValueError("customers >= 1, employees >= 10 and months >= 1 are required")
    if shape not in SHAPES:
        raise ValueError(f"shape={shape!r}: use one of {', '.join(SHAPES)}")
    first = _parse_start(start)
    month_range = first + np.arange(months + 1)
    month_start = month_range.astype("datetime64[D]").astype(np.int64)
    cal_month = (month_range[:-1].astype(np.int64) % 12).astype(np.int64)
    month_labels = [str(m) for m in month_range[:-1]]

    master = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    factors = master.lognormal(0.0, WIDE_SIZE_SIGMA if shape == "wide" else 0.5, customers)
    sizes = np.maximum(np.round(employees * factors / factors.mean()), 30).astype(np.int64)
    if sizes.sum() >= _CLIENT_SPACE:
        raise ValueError(f"too many employees in total ({sizes.sum()}); the client_ref space is {_CLIENT_SPACE}")
    jitter = master.uniform(-1, 1, customers)
    rates = ENGAGEMENT_RATE * (1 + 0.3 * np.clip(jitter - jitter.mean(), -1, 1))
    client_add, event_add = (int(x) for x in master.integers(0, 10**8, 2))

    ids = customer_ids(customers)
    headcounts: dict[str, pl.DataFrame] = {}
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("cust", "emp", "site", "dept", "role", "service", "date", "duration", "who5", "sat", "topic")
    }
    site_names: list[str] = []
    dept_names: list[str] = []
    role_names: list[str] = []
    emp_offset = 0
    for c, cid in enumerate(ids):
        cust = _customer(seed, c, int(sizes[c]), months, month_start, cal_month, float(rates[c]), shape)
        headcounts[cid] = _headcount_frame(cid, cust, months, month_labels)
        emp = cust.ev_emp
        cols["cust"].append(np.full(len(emp), c, dtype=np.int16))
        cols["emp"].append(emp_offset + emp)
        cols["site"].append((len(site_names) + cust.emp_site[emp]).astype(np.int16))
        cols["dept"].append((len(dept_names) + cust.emp_dept[emp]).astype(np.int16))
        cols["role"].append((len(role_names) + cust.emp_role[emp]).astype(np.int16))
        cols["service"].append(cust.ev_service.astype(np.int8))
        cols["date"].append(cust.ev_date.astype(np.int32))
        cols["duration"].append(cust.ev_duration)
        cols["who5"].append(cust.ev_who5.astype(np.int8))
        cols["sat"].append(cust.ev_satisfaction.astype(np.int8))
        cols["topic"].append(cust.ev_topic.astype(np.int8))
        site_names.extend(cust.sites)
        dept_names.extend(cust.departments)
        role_names.extend(cust.roles)
        emp_offset += int(sizes[c])
    # Order the export by date (stable: ties keep generation order) before any string is built.
    date = np.concatenate(cols.pop("date"))
    order = np.argsort(date, kind="stable")
    a = {k: np.concatenate(v)[order] for k, v in cols.items()}
    n_ev = len(order)
    export = pl.DataFrame(
        [
            _ids("EV-", order, _EVENT_MULT, event_add, _EVENT_SPACE, 10, "event_id"),
            _ids("C-", a["emp"], _CLIENT_MULT, client_add, _CLIENT_SPACE, 8, "client_ref"),
            _strings(ids, a["cust"], "customer_id"),
            _strings(site_names, a["site"], "site"),
            _strings(dept_names, a["dept"], "department"),
            _strings(role_names, a["role"], "role"),
            _strings(SERVICES, a["service"], "service"),
            pl.Series("occurred_on", date[order]).cast(pl.Date),
            pl.Series("duration_min", a["duration"].astype(np.int16)),
            pl.Series("who5_raw", a["who5"].astype(np.int8)),
            pl.Series("satisfaction", a["sat"].astype(np.int8)),
            _strings(TOPICS, a["topic"], "topic"),
        ]
    ).with_columns(pl.when(pl.col(c) >= 0).then(pl.col(c)).otherwise(None) for c in ("who5_raw", "satisfaction"))
    assert export.height == n_ev
    if shuffle:  # an export in no particular order (as real exports may come)
        perm = np.random.default_rng(np.random.SeedSequence([seed, 424_242])).permutation(n_ev)
        export = export[perm]
    return export.select(EVENT_COLUMN_NAMES), headcounts


def generate(
    out_dir: Path,
    *,
    customers: int = 3,
    employees: int = 1500,
    months: int = 12,
    seed: int = 7,
    dirty: bool = False,
    fmt: Literal["csv", "parquet", "jsonl"] = "csv",
    start: str = "2025-01",
    shards: int = 1,
    shape: Shape = "narrow",
    shuffle: bool = False,
) -> GeneratedFiles:
    """Write a synthetic provider export and one headcount CSV per customer into ``out_dir``.

    Same arguments, same bytes. Files: ``provider-export.<fmt>`` (or
    ``provider-export-part-NNN-of-MMM.<fmt>`` when ``shards > 1``), in dirty mode
    ``provider-export-redelivery.<fmt>``, and ``headcount-<customer>.csv``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt={fmt!r}: use one of {', '.join(FORMATS)}")
    if shards < 1:
        raise ValueError("shards must be at least 1")
    export, headcounts = build_frames(
        customers=customers, employees=employees, months=months, seed=seed, start=start, shape=shape, shuffle=shuffle
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    dirty_rows = 0
    redelivery: pl.DataFrame | None = None
    if dirty:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 99_991]))
        clean = export
        export, dirty_mask = _corrupt(clean, rng)
        dirty_rows = int(dirty_mask.sum())
        redelivery = _redelivery(clean, dirty_mask, rng).with_columns(
            pl.col(c).cast(pl.String) for c in DIRTY_TEXT_COLUMNS
        )

    events: list[Path] = []
    bounds = np.linspace(0, export.height, shards + 1).round().astype(int)
    for i in range(shards):
        name = "provider-export" if shards == 1 else f"provider-export-part-{i + 1:03d}-of-{shards:03d}"
        path = out_dir / f"{name}.{fmt}"
        _write(export.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i])), path, fmt)
        events.append(path)
    if redelivery is not None:
        path = out_dir / f"provider-export-redelivery.{fmt}"
        _write(redelivery, path, fmt)
        events.append(path)

    hc_paths: list[Path] = []
    for cid, frame in headcounts.items():
        path = out_dir / f"headcount-{cid}.csv"
        frame.write_csv(path)
        hc_paths.append(path)
    return GeneratedFiles(
        events=events,
        headcounts=hc_paths,
        n_events=export.height,
        customers=tuple(headcounts),
        dirty_rows=dirty_rows,
    )
