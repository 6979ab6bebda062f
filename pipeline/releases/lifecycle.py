"""The release life cycle: serve the stored draw, or check the budget, draw once, store, publish.

Order inside :func:`run_release` (privacy reason in brackets):

1. look up the stored draw of (customer, period); if there is one and this is not a
   reissue, serve it: republish, spend nothing [noise is drawn once; retries and
   backfills cannot re-noise];
2. load the policy from the control store (the privacy officers' latest edits);
3. ``cost = release_cost(policy, period)`` (data-independent, known before drawing);
4. ``spent`` = largest ρ in any rolling 12-month ledger window that would contain the period;
5. ``check_budget`` → :class:`~privacy.budget.BudgetExceeded` (nothing drawn, stored,
   published or spent) [the ledger is authoritative];
6. ``draw_release`` (OpenDP, the only source of noise);
7. store draw + cells + public headcount + ledger row in ONE raw-store transaction;
8. rebuild the published store and swap it in.

Only complete periods are released: a month is complete once it has ended (the first
day of the next month, UTC); a quarter once its last month has ended. Late-arriving
events for a released period are stored in the raw store but never change the
published value: the stored draw is served. They count only if a privacy officer
re-issues the period (``--reissue``), which draws anew and spends budget again.

:func:`run_all_due` follows the same steps for many releases at once: every budget is decided
first (period by period, as if released one by one), then customer by customer its accepted
releases are drawn together, up to ``CHUNK_RELEASES`` at a time, with
:func:`privacy.release.draw_releases` (one pass over their events, equal plans in one OpenDP
measurement) and stored in ONE transaction per chunk, with the ledger read back against the
cap before COMMIT (:func:`_release_customer`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import duckdb

from pipeline.raw_store import RawStoreError
from pipeline.releases.publish import merge_published, publish, write_part
from pipeline.releases.release_store import (
    DrawToStore,
    StoredRelease,
    current_draw,
    ensure_release_schema,
    ledger_entries,
    released_periods,
    spent_in_window,
    store_draw,
    store_draws,
)
from pipeline.releases.version import code_version
from pipeline.settings import Settings
from privacy.budget import BudgetExceeded, Cost, Rho, check_budget, fits_under_cap, release_cost
from privacy.periods import WINDOW_MONTHS, month_range, parse_period, period_of_month
from privacy.policy import ReleasePolicy
from stores.control import control_connection, current_policy

if TYPE_CHECKING:
    from pipeline.shards import Shard
    from privacy.release import DrawnRelease, PreparedReleases

log = logging.getLogger(__name__)

__all__ = [
    "IncompletePeriod",
    "NoDataForPeriod",
    "ReleaseOutcome",
    "run_release",
    "release_with",
    "due_periods",
    "run_all_due",
    "known_customers",
    "last_complete_month",
    "releasable_months",
]


class IncompletePeriod(ValueError):
    """The period has not ended yet (or is malformed); only complete periods are released."""


class NoDataForPeriod(ValueError):
    """The period cannot be released yet: no public structure (headcount) for it, or no provider
    delivery for the customer has been ingested since it ended. Nothing is drawn or spent.

    Privacy reason: whether a period is released is decided on public or operational facts only
    (the customer's headcount file, delivery times), never on whether any employee used the
    service in it; otherwise the mere existence of a release would reveal that someone did.
    """


@dataclass(frozen=True)
class ReleaseOutcome:
    """What one release call did. Aggregate facts only: never a cell value.

    ``status``: ``'published'`` (first draw), ``'reissued'`` (a new draw superseding the
    stored one), ``'served_stored'`` (the stored draw served again, nothing spent),
    ``'refused'`` (budget exceeded: nothing drawn, published or spent; only from
    :func:`run_all_due`, :func:`run_release` raises instead) or ``'failed'`` (only from
    :func:`run_all_due`: the customer's shard could not be opened; period ``'-'``; nothing
    drawn or spent for it, the other customers are released).
    """

    status: str
    customer_id: str
    period: str
    release_id: str | None
    version: int | None
    cost: Cost | None  # what THIS call spent (None when nothing was spent)
    cells: int = 0
    suppressed: int = 0
    message: str = ""
    policy_version: int | None = None
    extra: dict[str, float] = field(default_factory=dict)


def _utc_today() -> date:
    return datetime.now(UTC).date()


def last_complete_month(today: date | None = None) -> str:
    """The most recent month that has ended (``'YYYY-MM'``)."""
    d = today or _utc_today()
    y, m = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
    return f"{y:04d}-{m:02d}"


def _require_complete(period: str, today: date | None) -> str:
    try:
        p = parse_period(period)
    except ValueError as exc:
        raise IncompletePeriod(str(exc)) from None
    first_of_this_month = (today or _utc_today()).replace(day=1)
    if p.end > first_of_this_month:
        raise IncompletePeriod(
            f"period {p.label} is not complete yet (it ends on {p.end.isoformat()}); only periods that have "
            f"ended can be released — the latest complete month is {last_complete_month(today)}"
        )
    return p.label


def _load_policy(settings: Settings, customer_id: str) -> tuple[ReleasePolicy, int]:
    return _load_policies(settings, [customer_id])[customer_id]


def release_with(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    customer_id: str,
    period: str,
    *,
    requested_by: str,
    reissue: bool = False,
    today: date | None = None,
    publish_after: bool = True,
    policy: tuple[ReleasePolicy, int] | None = None,
    shard: Shard | None = None,
    delivered: datetime | None = None,
) -> ReleaseOutcome:
    """:func:`run_release` on an open read-write connection to the customer's shard (the one writer).

    ``policy`` (policy, version) may be passed by a caller that has just read it from the
    control store (``run_all_due``, when it falls back to single draws); by default it is read here.
    ``shard`` (needed to publish) is the customer's catalog entry; ``delivered`` the time of the
    last provider event file (from the catalog; read here when not given).
    """
    from privacy.release import draw_release  # imports OpenDP (slow); only when drawing

    if not str(requested_by or "").strip():
        raise ValueError("a release must name who asked for it (requested_by)")
    label = _require_complete(period, today)
    ensure_release_schema(con)
    stored = current_draw(con, customer_id, label)
    if stored is not None and not reissue:
        if publish_after and shard is not None:
            publish(settings, con, shard)
        return _outcome("served_stored", stored, con, cost=None, message="stored release served; nothing spent")

    if delivered is None:
        from pipeline.shards import last_event_delivery

        delivered = last_event_delivery(settings)
    not_ready = _not_releasable(con, customer_id, label, delivered)
    if not_ready:
        raise NoDataForPeriod(f"{customer_id} {label}: {not_ready}; nothing was drawn or spent")
    release_policy, policy_version = policy if policy is not None else _load_policy(settings, customer_id)
    cost = release_cost(release_policy, label)
    spent = spent_in_window(con, customer_id, label)
    check_budget(customer_id, label, spent, cost, release_policy)  # raises BudgetExceeded: nothing happens

    drawn = draw_release(con, customer_id, label, release_policy)
    outcome = _store_drawn(
        con,
        drawn,
        cost=cost,
        spent=spent,
        policy=release_policy,
        policy_version=policy_version,
        stored=stored,
        requested_by=requested_by,
    )
    if publish_after and shard is not None:
        publish(settings, con, shard)
    return outcome


def _check_drawn_cost(drawn: DrawnRelease, cost: Cost) -> None:
    """Refuse a draw that spent more than the checked ``cost`` (nothing is stored)."""
    if not fits_under_cap(Rho(0.0), Rho(drawn.cost.rho), Rho(cost.rho)):
        raise RuntimeError(
            f"the drawn release of {drawn.customer_id} {drawn.period} spent rho={drawn.cost.rho:g}, more than "
            f"the checked cost rho={cost.rho:g}; nothing was stored"
        )


def _header(
    drawn: DrawnRelease, *, policy: ReleasePolicy, policy_version: int, stored: StoredRelease | None, requested_by: str
) -> StoredRelease:
    return StoredRelease(
        release_id=uuid.uuid4().hex,
        customer_id=drawn.customer_id,
        period=drawn.period,
        granularity=drawn.granularity,
        version=(stored.version + 1) if stored else 1,
        created_at=datetime.now(UTC).replace(tzinfo=None),
        requested_by=requested_by,
        rho=drawn.cost.rho,
        epsilon=drawn.cost.epsilon,
        delta=drawn.cost.delta,
        accounting=drawn.cost.accounting,
        policy_version=policy_version,
        code_version=code_version(),
        k=policy.k,
        k_scores=policy.k_scores,
        z=policy.z,
    )


def _store_drawn(
    con: duckdb.DuckDBPyConnection,
    drawn: DrawnRelease,
    *,
    cost: Cost,
    spent: float,
    policy: ReleasePolicy,
    policy_version: int,
    stored: StoredRelease | None,
    requested_by: str,
) -> ReleaseOutcome:
    """Everything after the draw of a single release (nothing is published here).

    Refuses a draw that spent more than the checked ``cost``; otherwise stores the draw, its
    cells, its public headcount and its ledger row in ONE raw-store transaction.
    """
    _check_drawn_cost(drawn, cost)
    header = _header(drawn, policy=policy, policy_version=policy_version, stored=stored, requested_by=requested_by)
    kind = "reissue" if stored is not None else "release"
    store_draw(con, header, drawn.cells, drawn.public_headcount, kind=kind, allocations=drawn.allocations)
    status = "reissued" if stored is not None else "published"
    return _outcome(
        status,
        header,
        con,
        cost=drawn.cost,
        message=f"{status}: rho={drawn.cost.rho:.4g} spent ({spent + drawn.cost.rho:.4g} of cap "
        f"{policy.cap.value:.4g} in the rolling window)",
    )


def _not_releasable(
    con: duckdb.DuckDBPyConnection, customer_id: str, period: str, delivered: datetime | None
) -> str | None:
    """Why the period cannot be released yet (None when it can), from public/operational facts only.

    Requires a headcount snapshot (public structure) on or before the period's last month and a
    provider event delivery (any file, whoever it names: ``delivered``, from the catalog) ingested
    after the period ended. Never looks at the customer's event rows: whether anyone used the
    service cannot change whether a release exists; an empty period is released as noisy zeros
    like any empty group.
    """
    (structure,) = con.execute("SELECT min(as_of) FROM headcount WHERE customer_id = $c", {"c": customer_id}).fetchone()  # type: ignore[misc]
    return _why_not_releasable(period, structure, delivered)


def _why_not_releasable(period: str, first_snapshot: date | None, delivered: datetime | None) -> str | None:
    """:func:`_not_releasable` on facts already read: the first headcount snapshot and the last delivery."""
    p = parse_period(period)
    if first_snapshot is None or first_snapshot >= p.end:
        return "no headcount file (public structure) covers the period: ingest the customer's headcount first"
    if delivered is None or delivered.date() < p.end:
        return "no provider export has been ingested since the period ended: ingest the export covering it first"
    return None


def _outcome(
    status: str, header: StoredRelease, con: duckdb.DuckDBPyConnection, *, cost: Cost | None, message: str
) -> ReleaseOutcome:
    row = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE suppressed) FROM release_draw_cells WHERE release_id = ?",
        [header.release_id],
    ).fetchone()
    cells, suppressed = (int(row[0]), int(row[1])) if row else (0, 0)
    return ReleaseOutcome(
        status=status,
        customer_id=header.customer_id,
        period=header.period,
        release_id=header.release_id,
        version=header.version,
        cost=cost,
        cells=cells,
        suppressed=suppressed,
        message=message,
        policy_version=header.policy_version,
    )


def run_release(
    settings: Settings,
    customer_id: str,
    period: str,
    *,
    requested_by: str,
    reissue: bool = False,
    today: date | None = None,
) -> ReleaseOutcome:
    """Release (customer, period) once; re-runs serve the stored draw. See the module docstring.

    Raises :class:`~privacy.budget.BudgetExceeded` (nothing drawn, stored, published or spent),
    :class:`IncompletePeriod`, or :class:`pipeline.raw_store.RawStoreError` (e.g. another writer).
    """
    from pipeline.shards import open_shard, shard_and_delivery

    shard, delivered = shard_and_delivery(settings, customer_id)  # one catalog read; migrates a legacy store first
    con = open_shard(settings, shard)  # only this customer's shard
    try:
        return release_with(
            con, settings, customer_id, period, requested_by=requested_by, reissue=reissue, today=today,
            shard=shard, delivered=delivered,
        )  # fmt: skip
    finally:
        con.close()


def known_customers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Customers with a headcount or events in the raw store (names of employers, not of people)."""
    return [
        r[0]
        for r in con.execute(
            "SELECT customer_id FROM headcount UNION SELECT customer_id FROM events ORDER BY 1"
        ).fetchall()
    ]


def catalog_releasable_months(settings: Settings, today: date | None = None) -> list[str]:
    """:func:`releasable_months` from the catalog alone (no shard opened): the customers' first
    headcount months and the last provider event file, both recorded there at ingest."""
    from pipeline.shards import catalog_if_any, ensure_migrated

    ensure_migrated(settings)
    with catalog_if_any(settings) as con:
        if con is None:
            return []
        first, delivered = con.execute(
            "SELECT (SELECT min(first_snapshot) FROM customers WHERE removed_at IS NULL), "
            "(SELECT max(ingested_at) FROM deliveries WHERE kind = 'events')"
        ).fetchone() or (None, None)
    return _months_between(first, delivered, today)


def _months_between(first: date | None, delivered: datetime | None, today: date | None) -> list[str]:
    if first is None or delivered is None:
        return []
    last = min(last_complete_month(delivered.date()), last_complete_month(today))
    start = f"{first.year:04d}-{first.month:02d}"
    return month_range(start, last) if start <= last else []


def releasable_months(con: duckdb.DuckDBPyConnection, today: date | None = None) -> list[str]:
    """Months (``'YYYY-MM'``) some customer may have released: from the first month of any headcount
    snapshot to the last month that had ended when a provider export was last ingested (and that
    has ended today). Empty before the first headcount and export.

    These are the release asset's month partitions. Public and operational facts only (the
    headcount files' ``as_of`` and delivery times, as :func:`_not_releasable`): which months hold
    events is never consulted, so the partition list reveals nothing about anyone's use.
    """
    first, delivered = con.execute(
        "SELECT (SELECT min(as_of) FROM headcount), (SELECT max(ingested_at) FROM deliveries WHERE kind = 'events')"
    ).fetchone() or (None, None)
    if first is None or delivered is None:
        return []
    last = min(last_complete_month(delivered.date()), last_complete_month(today))
    start = f"{first.year:04d}-{first.month:02d}"
    return month_range(start, last) if start <= last else []


def _due(
    con: duckdb.DuckDBPyConnection,
    policy: ReleasePolicy,
    customer_id: str,
    today: date | None,
    delivered: datetime | None,
) -> list[str]:
    """Complete months with a headcount snapshot (``as_of``) of the customer and a delivery ingested
    after they ended, plus their complete quarters when a table is quarterly; minus stored ones.

    Public facts only (see :class:`NoDataForPeriod`): which months hold events is never consulted.
    The facts are read once (snapshot months, first snapshot, last delivery, stored periods).
    """
    last = last_complete_month(today)
    snapshot_months, first = con.execute(
        "SELECT (SELECT list(DISTINCT strftime(as_of, '%Y-%m') ORDER BY strftime(as_of, '%Y-%m')) "
        "        FROM headcount WHERE customer_id = $c), "
        "       (SELECT min(as_of) FROM headcount WHERE customer_id = $c)",
        {"c": customer_id},
    ).fetchone()  # type: ignore[misc]
    months = [m for m in (snapshot_months or []) if m <= last and _why_not_releasable(m, first, delivered) is None]
    candidates: list[str] = []
    if policy.tables_for("month"):
        candidates.extend(months)
    if policy.tables_for("quarter"):
        for q in dict.fromkeys(period_of_month(m, "quarter") for m in months):
            if parse_period(q).last_month <= last and _why_not_releasable(q, first, delivered) is None:
                candidates.append(q)
    done = released_periods(con, customer_id)
    due = [p for p in candidates if p not in done]
    return sorted(due, key=lambda p: (parse_period(p).last_month, parse_period(p).n_months))


def due_periods(settings: Settings, customer_id: str, *, today: date | None = None) -> list[str]:
    """Complete periods of the customer with a headcount snapshot, delivered data and no stored release (oldest first)."""
    from pipeline.shards import UnknownCustomer, find_shard, last_event_delivery, open_shard

    try:
        shard = find_shard(settings, customer_id)
    except UnknownCustomer:
        return []
    policy, _ = _load_policy(settings, customer_id)
    delivered = last_event_delivery(settings)
    con = open_shard(settings, shard)
    try:
        return _due(con, policy, customer_id, today, delivered)
    finally:
        con.close()


def run_all_due(
    settings: Settings,
    requested_by: str,
    *,
    customers: list[str] | None = None,
    today: date | None = None,
    on_outcome: Callable[[ReleaseOutcome], None] | None = None,
    publish: bool = True,
    workers: int = 1,
) -> list[ReleaseOutcome]:
    """Release every due period of every customer (or of ``customers``), oldest first; publish once.

    Opens one customer's shard at a time (its part of the published store is written from it);
    ``publish=False`` leaves the final merge to the caller (e.g. several processes, each with its
    own customers, then one :func:`pipeline.releases.publish.merge_published`). ``workers`` > 1
    releases customers side by side in that many spawned processes
    (:mod:`pipeline.releases.parallel`; largest shard first), each task exactly the one-process
    steps below for one customer; the outcomes are the same.

    ``on_outcome`` hears each outcome as soon as its customer's releases are stored (progress output).

    1. Every customer's policy (one read of the control store) and due periods (public facts).
    2. Budget, period by period (months before the quarter ending with them, as
       :func:`due_periods` orders them): each due release is checked exactly as
       :func:`release_with` does, against the ledger plus the releases accepted earlier in this
       run (costs are data-independent, so the whole run's budget decisions are known before
       anything is drawn). A release that does not fit is ``refused``: nothing is drawn or
       spent for it, and the later periods are still tried.
    3. Customer by customer, ``CHUNK_RELEASES`` of its accepted releases at a time (oldest
       first): they are drawn with :func:`privacy.release.draw_releases` (their events reduced in
       one pass, releases with the same plan measured together; each release's loss is that of a
       single release), then stored in ONE transaction, one ledger row per release, with the
       budget read back from the ledger inside the transaction (any window over the cap: nothing
       of the chunk is stored). If a chunk's batched draw fails, its releases are drawn one by
       one with :func:`privacy.release.draw_release` (outcome message ``drawn one by one``).
    4. One publish at the end (also when a customer raised: what was stored is published, then
       the error is raised). Outcomes in period order, customers in the order given.

    A stored release is never drawn again (a stored period is not due).
    """
    if not str(requested_by or "").strip():
        raise ValueError("a release must name who asked for it (requested_by)")
    from pipeline.shards import last_event_delivery, live_shards

    shards = {s.customer_id: s for s in live_shards(settings)}  # migrates a legacy store first
    order = customers if customers is not None else list(shards)
    policies = _load_policies(settings, order)
    delivered = last_event_delivery(settings)
    results: dict[tuple[str, str], ReleaseOutcome] = {}

    def heard(outcome: ReleaseOutcome) -> None:
        results[(outcome.customer_id, outcome.period)] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    tasks = []
    for customer in order:
        shard = shards.get(customer)
        if shard is None:
            heard(_failed(customer, f"unknown customer {customer!r}: no shard in the catalog"))
        else:
            tasks.append((settings, shard, policies[customer], requested_by, today, delivered))
    try:
        if workers > 1 and len(tasks) > 1:
            from pipeline.releases.parallel import in_workers

            tasks.sort(key=lambda t: -_shard_size(settings, t[1]))  # largest first: the run ends together
            from pipeline.preload import RELEASE_MODULES

            for _, future in in_workers(_all_due_of_customer, tasks, workers, preload_modules=RELEASE_MODULES):
                for outcome in future.result():  # a worker's exception is raised here
                    heard(outcome)
        else:
            for task in tasks:
                for outcome in _all_due_of_customer(*task):
                    heard(outcome)
    finally:
        if publish:  # what was stored is published, also when a customer raised
            merge_published(settings)
    rank = {c: i for i, c in enumerate(order)}
    return [results[key] for key in sorted(results, key=lambda k: (_period_order(k[1]), rank.get(k[0], 0)))]


# A customer's due releases are drawn and stored CHUNK_RELEASES at a time (about two years of months
# and their quarters): one reduction pass, OpenDP batch and store transaction per chunk, so the memory
# of a long backlog (a new customer with years of history) stays that of two years.
CHUNK_RELEASES = 32


def _shard_size(settings: Settings, shard: Shard) -> int:
    from pipeline.shard_storage import remote_size

    path = settings.shard_path(shard.shard_id)
    try:
        return path.stat().st_size
    except OSError:
        return remote_size(settings, path)  # with a shard bucket the parent holds no copy


def _all_due_of_customer(
    settings: Settings,
    shard: Shard,
    policy: tuple[ReleasePolicy, int],
    requested_by: str,
    today: date | None,
    delivered: datetime | None,
) -> list[ReleaseOutcome]:
    """Steps 1-3 of :func:`run_all_due` for one customer, on its shard only (also a worker task).

    Writes the customer's published part; publishing (the merge) is the caller's.
    """
    from pipeline.shards import open_shard

    customer = shard.customer_id
    try:
        con = open_shard(settings, shard)  # this customer's shard only; a broken one stops only it
    except RawStoreError as exc:
        return [_failed(customer, str(exc))]
    outcomes: list[ReleaseOutcome] = []
    try:
        due = {customer: _due(con, policy[0], customer, today, delivered)}
        accepted, refused = _budget_plan(con, [customer], due, {customer: policy}, today)
        outcomes.extend(refused.values())  # refused for budget: known before anything is drawn
        todo = accepted[customer]
        for start in range(0, len(todo), CHUNK_RELEASES):  # a long backlog in bounded pieces, oldest first
            outcomes.extend(
                _release_customer(con, customer, todo[start : start + CHUNK_RELEASES], policy, requested_by, None)
            )
        write_part(settings, con, shard)
    finally:
        con.close()
    return outcomes


def _failed(customer_id: str, message: str) -> ReleaseOutcome:
    """A customer whose shard could not be used: nothing drawn or spent for it; the others go on."""
    return ReleaseOutcome("failed", customer_id, "-", None, None, None, message=message)


def _load_policies(settings: Settings, customers: list[str]) -> dict[str, tuple[ReleasePolicy, int]]:
    """Each customer's effective policy and its version, in one read of the control store."""
    with control_connection(settings, read_only=True) as control:
        return {c: current_policy(control, c) for c in customers}


def _period_order(period: str) -> tuple[str, int]:
    if period == "-":  # a failed customer (no period): first
        return ("", 0)
    p = parse_period(period)
    return (p.last_month, p.n_months)


@dataclass(frozen=True)
class _Accepted:
    """A due release whose budget was checked: its cost and the ρ already spent in its windows."""

    period: str
    cost: Cost
    spent: float


def _budget_plan(
    con: duckdb.DuckDBPyConnection,
    customers: list[str],
    due: dict[str, list[str]],
    policies: dict[str, tuple[ReleasePolicy, int]],
    today: date | None,
) -> tuple[dict[str, list[_Accepted]], dict[tuple[str, str], ReleaseOutcome]]:
    """The budget decision of every due release, period by period, before anything is drawn.

    Each customer's ledger is read once; a release accepted earlier in this run counts as spent
    for the later ones (exactly the checks of releasing them one by one, in this order).
    """
    ledger = {c: _WindowLedger(_ledger_pairs(con, c)) for c in customers}
    accepted: dict[str, list[_Accepted]] = {c: [] for c in customers}
    refused: dict[tuple[str, str], ReleaseOutcome] = {}
    periods = sorted({p for c in customers for p in due[c]}, key=_period_order)
    for period in periods:
        label = _require_complete(period, today)
        for customer in customers:
            if period not in due[customer]:
                continue
            policy = policies[customer][0]
            cost = release_cost(policy, label)
            spent = ledger[customer].max_spend(label)
            try:
                check_budget(customer, label, spent, cost, policy)
            except BudgetExceeded as exc:
                refused[(customer, label)] = _refused(customer, label, exc)
                continue
            accepted[customer].append(_Accepted(label, cost, spent))
            ledger[customer].add(label, cost.rho)
    return accepted, refused


def _ledger_pairs(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[tuple[str, float]]:
    entries = ledger_entries(con, customer_id)
    return [(p, float(r)) for p, r in zip(entries["period"].to_list(), entries["rho"].to_list())]


class _WindowLedger:
    """:func:`privacy.periods.max_window_spend` over a growing list of ledger entries, each parsed once.

    An entry's months are contiguous, so it counts in the 12-month window ending at month ``e``
    iff it starts at or before ``e`` and ends at or after ``e - 11``; the windows that contain a
    period end from its first month to 11 months after its last (tested equal to ``max_window_spend``).
    """

    def __init__(self, pairs: list[tuple[str, float]]) -> None:
        self._entries: list[tuple[int, int, float]] = []
        for period, rho in pairs:
            self.add(period, rho)

    @staticmethod
    def _span(period: str) -> tuple[int, int]:
        p = parse_period(period)
        first = p.year * 12 + p.first_month - 1
        return first, first + p.n_months - 1

    def add(self, period: str, rho: float) -> None:
        first, last = self._span(period)
        self._entries.append((first, last, float(rho)))

    def max_spend(self, period: str) -> float:
        first, last = self._span(period)
        best = 0.0
        for end in range(first, last + WINDOW_MONTHS):
            spent = sum(r for f, la, r in self._entries if f <= end and la >= end - (WINDOW_MONTHS - 1))
            best = max(best, spent)
        return best


def _release_customer(
    con: duckdb.DuckDBPyConnection,
    customer: str,
    accepted: list[_Accepted],
    policy_and_version: tuple[ReleasePolicy, int],
    requested_by: str,
    prepared: Future[PreparedReleases] | None = None,
) -> list[ReleaseOutcome]:
    """Draw a customer's accepted releases (batched, else one by one) and store them in ONE transaction."""
    import privacy.release as release_mod  # imports OpenDP (slow); only when drawing

    policy, policy_version = policy_and_version
    requests = [(customer, a.period) for a in accepted]
    note = ""
    try:
        ready = [prepared.result()] if prepared is not None else []
        drawn = release_mod.draw_releases(con, requests, policy, prepared=ready)
    except Exception as exc:  # nothing was returned, so nothing was stored or spent
        note = f"; batched draw of {len(requests)} release(s) of {customer} failed ({type(exc).__name__}); drawn one by one"
        log.warning("%s", note[2:])  # the class name only: a library message could quote a value
        drawn = [release_mod.draw_release(con, customer, period, policy) for _, period in requests]
    if [(d.customer_id, d.period) for d in drawn] != requests:
        raise RuntimeError(f"the draws of {customer} do not match its {len(requests)} request(s); nothing was stored")
    headers = []
    for a, one in zip(accepted, drawn):
        _check_drawn_cost(one, a.cost)
        headers.append(
            _header(one, policy=policy, policy_version=policy_version, stored=None, requested_by=requested_by)
        )
    labels = [a.period for a in accepted]

    def within_cap(tx: duckdb.DuckDBPyConnection) -> None:
        """The authoritative ledger, read back inside the transaction: every window of every new release fits."""
        ledger = _WindowLedger(_ledger_pairs(tx, customer))
        for label in labels:
            total = ledger.max_spend(label)
            if not fits_under_cap(Rho(total), Rho(0.0), policy.cap):
                raise BudgetExceeded(customer, label, total, policy.cap.value, 0.0)

    store_draws(
        con,
        [DrawToStore(h, d.cells, d.public_headcount, "release", d.allocations) for h, d in zip(headers, drawn)],
        verify=within_cap,
    )
    out = []
    for a, header, one in zip(accepted, headers, drawn):
        suppressed = int(one.cells["suppressed"].sum()) if one.cells.height else 0
        out.append(ReleaseOutcome(
            status="published", customer_id=customer, period=a.period, release_id=header.release_id,
            version=header.version, cost=one.cost, cells=one.cells.height, suppressed=suppressed,
            message=f"published: rho={one.cost.rho:.4g} spent ({a.spent + one.cost.rho:.4g} of cap "
            f"{policy.cap.value:.4g} in the rolling window){note}",
            policy_version=policy_version,
        ))  # fmt: skip
    return out


def _refused(customer_id: str, period: str, exc: BudgetExceeded) -> ReleaseOutcome:
    return ReleaseOutcome("refused", customer_id, period, None, None, None, message=str(exc))
