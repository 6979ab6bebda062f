"""Public group keys from the customer's headcount file, with small groups rolled up first.

Privacy reason: the keys of every breakdown come from the customer's own, public headcount
file (and the fixed service/topic lists of the data contract), never from usage data, so the
existence of a group reveals nothing. A group whose *public headcount* is below ``k`` is
generalised before the release (it depends on public data only), so its people are still
counted instead of being lost to suppression:

* department < k → ``"[Small teams, site X]"`` (X = the site holding most of its headcount);
  if that group is still < k, its departments go to ``"[Small teams]"`` (organisation-wide);
* site < k → ``"[Small sites]"``; role < k → ``"[Other roles]"``;
* a rolled-up group still < k has no key: its people count towards the total only.

Roll-up keys live in their own namespace: they start with ``[``, which no real site,
department or role may start with (the data contract refuses such names, and
:func:`build_structure` refuses them again), so a real group can never be merged with a
roll-up or have its headcount overwritten by one.

The snapshot used is the latest ``as_of`` on or before the period's last month; when the
customer has no snapshot that old, the earliest later one (the structure is public).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from privacy.contract import SERVICES, TOPICS
from privacy.periods import parse_period

ROLLUP_PREFIX = "["  # reserved: no real name starts with it
SMALL_TEAMS = "[Small teams]"
SMALL_SITES = "[Small sites]"
OTHER_ROLES = "[Other roles]"
BREAKDOWNS: tuple[str, ...] = ("department", "site", "role")
HEADCOUNT_SCHEMA = {
    "customer_id": pl.String,
    "as_of": pl.Date,
    "dimension": pl.String,
    "group_value": pl.String,
    "headcount": pl.Int64,
}
MAP_SCHEMA = {"dimension": pl.String, "source": pl.String, "group_value": pl.String}


class StructureError(ValueError):
    """The customer has no public structure (headcount file) to release against."""


def small_teams_label(site: str) -> str:
    return f"[Small teams, site {site}]"


def is_rollup(group_value: str) -> bool:
    """Whether a public key is a roll-up of small groups (its own namespace, see the module docstring)."""
    return group_value.startswith(ROLLUP_PREFIX)


@dataclass(frozen=True)
class PublicStructure:
    """Public keys of one customer's release.

    ``key_map``: (dimension, source, group_value) maps a department/site/role as written in the
    data to its public key after roll-up (missing source → totals only).
    ``public_headcount``: customer_id, as_of, dimension, group_value, headcount (incl. total 'all').
    """

    customer_id: str
    as_of: date
    key_map: pl.DataFrame
    public_headcount: pl.DataFrame

    def people_keys(self) -> pl.DataFrame:
        """Keys (dimension, group_value) of the total and the department/site/role breakdowns."""
        return self.public_headcount.select("dimension", "group_value")


def usage_keys(dimension: str) -> pl.DataFrame:
    """Fixed public keys of the service or topic breakdown (data contract lists)."""
    values = {"service": SERVICES, "topic": TOPICS}[dimension]
    return pl.DataFrame({"dimension": [dimension] * len(values), "group_value": list(values)})


def build_structure(rows: pl.DataFrame, k: int, customer_id: str, as_of: date) -> PublicStructure:
    """Roll up one headcount snapshot (columns site, department, role, headcount) into public keys."""
    rows = rows.select(
        pl.col("site").cast(pl.String),
        pl.col("department").cast(pl.String),
        pl.col("role").cast(pl.String),
        pl.col("headcount").cast(pl.Int64),
    )
    for dim in BREAKDOWNS:
        reserved = rows.filter(pl.col(dim).str.starts_with(ROLLUP_PREFIX))[dim].unique().sort().to_list()
        if reserved:
            raise StructureError(
                f"customer {customer_id!r}: {len(reserved)} {dim} name(s) in the headcount start with "
                f"{ROLLUP_PREFIX!r}, which is reserved for rolled-up groups; rename them in the headcount file "
                "and the provider export, then ingest them again"
            )
    maps: list[tuple[str, str, str | None]] = []
    counts: dict[tuple[str, str], int] = {}

    # departments
    dept = rows.group_by("department").agg(pl.col("headcount").sum()).sort("department")
    dept_site = (
        rows.group_by("department", "site")
        .agg(pl.col("headcount").sum())
        .sort(["department", "headcount", "site"], descending=[False, True, False])
        .unique("department", keep="first", maintain_order=True)
    )
    main_site = dict(zip(dept_site["department"], dept_site["site"]))
    small: dict[str, list[tuple[str, int]]] = {}
    for name, n in dept.iter_rows():
        if n >= k:
            maps.append(("department", name, name))
            counts[("department", name)] = n
        else:
            small.setdefault(small_teams_label(main_site[name]), []).append((name, n))
    leftovers: list[tuple[str, int]] = []
    for label in sorted(small):
        members = small[label]
        total = sum(n for _, n in members)
        if total >= k:
            maps.extend(("department", name, label) for name, _ in members)
            counts[("department", label)] = total
        else:
            leftovers.extend(members)
    _roll(maps, counts, "department", leftovers, SMALL_TEAMS, k)

    # sites and roles
    for dim, label in (("site", SMALL_SITES), ("role", OTHER_ROLES)):
        sums = rows.filter(pl.col(dim).is_not_null()).group_by(dim).agg(pl.col("headcount").sum()).sort(dim)
        rest: list[tuple[str, int]] = []
        for name, n in sums.iter_rows():
            if n >= k:
                maps.append((dim, name, name))
                counts[(dim, name)] = n
            else:
                rest.append((name, n))
        _roll(maps, counts, dim, rest, label, k)

    key_map = pl.DataFrame(maps, schema=MAP_SCHEMA, orient="row")
    total = int(rows["headcount"].sum() or 0)
    hc = [(customer_id, as_of, "total", "all", total)] + [
        (customer_id, as_of, d, g, n)
        for (d, g), n in sorted(counts.items(), key=lambda x: (BREAKDOWNS.index(x[0][0]), x[0][1]))
    ]
    public_headcount = pl.DataFrame(hc, schema=HEADCOUNT_SCHEMA, orient="row")
    return PublicStructure(customer_id, as_of, key_map, public_headcount)


def _roll(maps: list, counts: dict, dim: str, members: list[tuple[str, int]], label: str, k: int) -> None:
    if not members:
        return
    total = sum(n for _, n in members)
    key = label if total >= k else None  # still too small: totals only
    maps.extend((dim, name, key) for name, _ in members)
    if key is not None:
        counts[(dim, key)] = counts.get((dim, key), 0) + total


def load_structure(con: duckdb.DuckDBPyConnection, customer_id: str, period: str, k: int) -> PublicStructure:
    """Read the customer's headcount snapshot for ``period`` through ``con`` and roll it up."""
    return load_structures(con, customer_id, [period], k)[period]


def load_structures(
    con: duckdb.DuckDBPyConnection, customer_id: str, periods: list[str], k: int
) -> dict[str, PublicStructure]:
    """The public structure of several periods of one customer, one roll-up per snapshot.

    Each period gets the latest snapshot (``as_of``) on or before its last month, else the earliest.
    Only those snapshots' rows are read (a customer with years of monthly snapshots costs what the
    requested periods need), each rolled up once, whichever periods share it.
    """
    snapshots = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT as_of FROM headcount WHERE customer_id = $c ORDER BY as_of", {"c": customer_id}
        ).fetchall()
    ]
    if not snapshots:
        raise StructureError(
            f"customer {customer_id!r} has no headcount file: ingest its headcount (customer_id, site, "
            "department, role, headcount, as_of) before releasing, since every group key comes from it"
        )
    picked: dict[str, date] = {}
    for period in periods:
        last = parse_period(period).last_month_start
        earlier = [a for a in snapshots if a <= last]
        picked[period] = earlier[-1] if earlier else snapshots[0]
    rows = con.execute(
        "SELECT as_of, site, department, role, headcount FROM headcount "
        "WHERE customer_id = $c AND list_contains($a::DATE[], as_of)",
        {"c": customer_id, "a": sorted(set(picked.values()))},
    ).pl()
    by_snapshot = rows.partition_by("as_of", as_dict=True, include_key=False)
    built = {as_of: build_structure(by_snapshot[(as_of,)], k, customer_id, as_of) for as_of in set(picked.values())}
    return {period: built[as_of] for period, as_of in picked.items()}
