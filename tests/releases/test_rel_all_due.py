"""``run_all_due``: all due periods of a customer drawn together (``draw_releases``), same outcome as one by one.

Same releases, one ledger row each with the single-release ρ, same published schema and cell
counts; a budget refusal refuses only that release (counting the releases accepted earlier in
the same run) and spends nothing; re-running draws nothing; a failing batched draw falls back
to single draws; the ledger read back inside the store transaction guards the cap.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from release_helpers import CUSTOMERS, published, raw_ledger

import privacy.release as release_mod
from pipeline.raw_store import raw_connection
from pipeline.releases.lifecycle import run_all_due, run_release
from pipeline.settings import Settings
from privacy.budget import release_cost
from privacy.policy import DEFAULT_POLICY
from privacy.structure import StructureError
from stores.control import control_connection, set_policy_value

C, D = CUSTOMERS
TODAY = date(2025, 4, 10)  # due: 2025-01 .. 2025-03 and 2025-Q1 (wellbeing, services and topics are quarterly)
MONTHS = ("2025-01", "2025-02", "2025-03")
PERIODS = (*MONTHS, "2025-Q1")


def _room_for(settings: Settings, customer: str, monthly: int) -> float:
    """Leave ``customer`` room for ``monthly`` more monthly releases in the windows of 2025-01..04.

    A release of 2025-04 at a high annual ε fills part of the windows; then the officer lowers
    the dial so that the rest of the cap holds exactly ``monthly`` monthly releases (each costs
    cap × 0.5 / 12 at the defaults). Returns the ρ already spent.
    """
    from privacy.budget import implied_epsilon

    with control_connection(settings) as con:
        set_policy_value(con, "epsilon_annual", "20", customer_id=customer, changed_by="po")
    spent = run_release(settings, customer, "2025-04", requested_by="po", today=date(2025, 5, 2)).cost.rho  # type: ignore[union-attr]
    cap = spent / (1 - monthly * 0.5 / 12)
    with control_connection(settings) as con:
        set_policy_value(con, "epsilon_annual", repr(implied_epsilon(cap, 1e-6)), customer_id=customer, changed_by="po")
    return spent


RELEASES = (
    "SELECT customer_id, period, granularity, version, requested_by, rho, epsilon, delta, accounting, "
    "policy_version, code_version, k, k_scores, z FROM releases ORDER BY customer_id, period"
)
CELL_KEYS = (
    "SELECT customer_id, period, dimension, group_value, metric FROM release_cells "
    "ORDER BY customer_id, period, dimension, group_value, metric"
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Record the calls to the real draw functions (they still draw; nothing is replaced)."""
    seen: dict[str, list] = {"batched": [], "single": []}
    real_batched, real_single = release_mod.draw_releases, release_mod.draw_release

    def batched(con, requests, policy, **kw):
        seen["batched"].append((list(requests), policy))
        return real_batched(con, requests, policy, **kw)

    def single(con, customer_id, period, policy):
        seen["single"].append((customer_id, period))
        return real_single(con, customer_id, period, policy)

    monkeypatch.setattr(release_mod, "draw_releases", batched)
    monkeypatch.setattr(release_mod, "draw_release", single)
    return seen


def _second_home(template: Path, tmp_path: Path) -> Settings:
    other = tmp_path / "one-by-one"
    shutil.copytree(template, other)
    return Settings.from_env(other)


def _schema(settings: Settings) -> list[tuple]:
    return published(
        settings,
        "SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY table_name, ordinal_position",
    )


def test_all_due_batched_equals_releasing_one_by_one(
    rsettings: Settings, ingested_template: Path, tmp_path: Path, calls: dict[str, list]
) -> None:
    outcomes = run_all_due(rsettings, "scheduler", today=TODAY)
    # outcomes period by period, oldest first; all periods of a customer in ONE batched draw; no single draw
    assert [(o.period, o.customer_id) for o in outcomes] == [(m, c) for m in PERIODS for c in CUSTOMERS]
    assert all(o.status == "published" for o in outcomes)
    assert [reqs for reqs, _ in calls["batched"]] == [[(c, m) for m in PERIODS] for c in CUSTOMERS]
    assert calls["single"] == []

    single = _second_home(ingested_template, tmp_path)
    for c in CUSTOMERS:
        for m in PERIODS:
            assert run_release(single, c, m, requested_by="scheduler").status == "published"

    # the same releases (header facts), one ledger row each with the single-release rho
    assert published(rsettings, RELEASES) == published(single, RELEASES)
    expected_rho = release_cost(DEFAULT_POLICY, "2025-01").rho
    batched_ledger = raw_ledger(rsettings)
    assert sorted((r[0], r[1], r[2], r[3], r[5]) for r in batched_ledger) == sorted(
        (r[0], r[1], r[2], r[3], r[5]) for r in raw_ledger(single)
    )
    assert len(batched_ledger) == 8
    assert all(r[3] == pytest.approx(release_cost(DEFAULT_POLICY, r[1]).rho) for r in batched_ledger)
    assert sum(r[1] != "2025-Q1" for r in batched_ledger) == 6 and expected_rho > 0
    assert {r[4] for r in batched_ledger} == {o.release_id for o in outcomes}  # the ledger row of each draw
    # the published store: same tables and columns, same cells (keys and counts) per release
    assert _schema(rsettings) == _schema(single)
    assert published(rsettings, CELL_KEYS) == published(single, CELL_KEYS)
    assert {(o.customer_id, o.period): o.cells for o in outcomes} == {
        (c, p): n
        for c, p, n in published(single, "SELECT customer_id, period, count(*) FROM release_cells GROUP BY ALL")
    }
    assert published(rsettings, "SELECT count(*) FROM budget_ledger")[0][0] == 8


def test_budget_refusal_inside_a_batch_refuses_only_that_customer(rsettings: Settings, calls: dict[str, list]) -> None:
    # room for two monthly releases: the third is refused because of the two drawn earlier in this run
    spent = _room_for(rsettings, C, 2)
    outcomes = {(o.customer_id, o.period): o for o in run_all_due(rsettings, "scheduler", today=TODAY)}
    assert {k: o.status for k, o in outcomes.items()} == {
        (C, "2025-01"): "published",
        (C, "2025-02"): "published",
        (C, "2025-03"): "refused",
        (C, "2025-Q1"): "refused",
        (D, "2025-01"): "published",
        (D, "2025-02"): "published",
        (D, "2025-03"): "published",
        (D, "2025-Q1"): "published",
    }
    refused = outcomes[(C, "2025-03")]
    assert refused.cost is None and refused.release_id is None
    cap = spent / (1 - 2 * 0.5 / 12)
    assert f"of the rolling 12-month cap rho={cap:.4g} is already spent" in refused.message
    # the refused releases were left out of the customer's batch; the other customer was drawn in full
    assert [reqs for reqs, _ in calls["batched"]] == [[(C, "2025-01"), (C, "2025-02")], [(D, m) for m in PERIODS]]
    ledger = raw_ledger(rsettings)
    assert sorted((r[0], r[1]) for r in ledger if r[1] != "2025-04") == sorted(
        k for k, o in outcomes.items() if o.status == "published"
    )
    assert sum(r[3] for r in ledger if r[0] == C) == pytest.approx(cap)
    with raw_connection(rsettings, read_only=True) as con:
        assert (
            con.execute(
                "SELECT count(*) FROM release_draws WHERE customer_id = ? AND period = '2025-03'", [C]
            ).fetchone()[0]
            == 0
        )
    assert published(
        rsettings, "SELECT count(*) FROM release_cells WHERE customer_id = ? AND period = '2025-03'", [C]
    ) == [(0,)]
    assert published(rsettings, "SELECT count(*) FROM releases")[0][0] == 7  # C: 2025-01, 02, 04; D: four


def test_rerun_draws_nothing_and_spends_nothing(rsettings: Settings, calls: dict[str, list]) -> None:
    run_all_due(rsettings, "scheduler", today=TODAY)
    ledger = raw_ledger(rsettings)
    cells = published(rsettings, "SELECT * FROM release_cells ORDER BY ALL")
    n_batched = len(calls["batched"])

    assert run_all_due(rsettings, "scheduler-retry", today=TODAY) == []
    assert len(calls["batched"]) == n_batched and calls["single"] == []  # nothing drawn again
    assert raw_ledger(rsettings) == ledger
    assert published(rsettings, "SELECT * FROM release_cells ORDER BY ALL") == cells  # not re-noised
    served = run_release(rsettings, C, "2025-02", requested_by="bob")
    assert served.status == "served_stored" and served.cost is None
    assert raw_ledger(rsettings) == ledger


def test_failing_batched_draw_falls_back_to_single_draws(rsettings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn_alone: list[tuple[str, str]] = []
    real_single = release_mod.draw_release

    def failing_batch(con, requests, policy, **kw):
        raise StructureError("batch refused")

    def single(con, customer_id, period, policy):
        drawn_alone.append((customer_id, period))
        return real_single(con, customer_id, period, policy)

    _room_for(rsettings, C, 2)
    monkeypatch.setattr(release_mod, "draw_releases", failing_batch)
    monkeypatch.setattr(release_mod, "draw_release", single)

    outcomes = run_all_due(rsettings, "scheduler", today=TODAY)
    status = {(o.customer_id, o.period): o.status for o in outcomes}
    assert status == {(c, m): "published" for c in CUSTOMERS for m in PERIODS} | {
        (C, "2025-03"): "refused",
        (C, "2025-Q1"): "refused",
    }
    assert drawn_alone == [(c, m) for c in CUSTOMERS for m in PERIODS if status[(c, m)] == "published"]
    assert all("drawn one by one" in o.message for o in outcomes if o.status == "published")
    ledger = [r for r in raw_ledger(rsettings) if r[1] != "2025-04"]
    assert sorted((r[0], r[1], r[2]) for r in ledger) == sorted((c, m, "release") for c, m in drawn_alone)
    for r in ledger:
        from pipeline.releases.lifecycle import _load_policy

        assert r[3] == pytest.approx(release_cost(_load_policy(rsettings, r[0])[0], r[1]).rho) and r[5] == "scheduler"
    assert published(rsettings, "SELECT count(*) FROM releases")[0][0] == 7


def test_quarters_follow_their_months_and_other_policies_get_their_own_batch(
    rsettings: Settings, calls: dict[str, list]
) -> None:
    with control_connection(rsettings) as con:
        set_policy_value(con, "granularity.wellbeing", "month", customer_id=C, changed_by="po")
    outcomes = run_all_due(rsettings, "scheduler", today=TODAY)
    assert [o.period for o in outcomes if o.customer_id == C] == [*MONTHS, "2025-Q1"]
    assert [o.period for o in outcomes][-1] == "2025-Q1"
    assert all(o.status == "published" for o in outcomes)
    # one draw per customer, each with all its periods under its own policy
    from pipeline.releases.lifecycle import _load_policy

    assert [(reqs, p.model_dump_json()) for reqs, p in calls["batched"]] == [
        ([(c, m) for m in PERIODS], _load_policy(rsettings, c)[0].model_dump_json()) for c in CUSTOMERS
    ]

    policy_c, version_c = _load_policy(rsettings, C)
    with raw_connection(rsettings, read_only=True) as con:
        rows = con.execute(
            "SELECT customer_id, period, rho, policy_version FROM budget_ledger ORDER BY entry_id"
        ).fetchall()
    for customer, period, rho, version in rows:
        policy, expected_version = _load_policy(rsettings, customer)
        assert rho == pytest.approx(release_cost(policy, period).rho)
        assert version == expected_version
    assert version_c > 0 and policy_c.tables_for("quarter")
    assert sum(r[2] for r in rows if r[0] == C) == pytest.approx(
        3 * release_cost(policy_c, "2025-01").rho + release_cost(policy_c, "2025-Q1").rho
    )


def test_the_ledger_read_back_in_the_transaction_guards_the_cap(
    rsettings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: if the in-memory budget plan were wrong (here it ignores the ledger), the ledger
    read back inside the store transaction refuses the customer's releases: nothing is stored or spent."""
    import pipeline.releases.lifecycle as lifecycle
    from privacy.budget import BudgetExceeded

    real_plan, real_pairs = lifecycle._budget_plan, lifecycle._ledger_pairs

    def plan_ignoring_ledger(con, customers, due, policies, today):
        lifecycle._ledger_pairs = lambda con, customer: []  # type: ignore[assignment]
        try:
            return real_plan(con, customers, due, policies, today)
        finally:
            lifecycle._ledger_pairs = real_pairs  # type: ignore[assignment]

    _room_for(rsettings, C, 2)  # C has room for two monthly releases; the plan would accept four
    monkeypatch.setattr(lifecycle, "_budget_plan", plan_ignoring_ledger)
    before = raw_ledger(rsettings)
    with pytest.raises(BudgetExceeded):
        run_all_due(rsettings, "scheduler", today=TODAY)
    assert raw_ledger(rsettings) == before  # nothing of C stored or spent (C is released first)
    with raw_connection(rsettings, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM release_draws WHERE period <> '2025-04'").fetchone()[0] == 0
