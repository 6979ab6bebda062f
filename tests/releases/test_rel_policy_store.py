"""The control store API (privacy.policy_store) on plain DuckDB connections."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from privacy.policy import DEFAULT_POLICY, PolicyError
from stores.control import (
    claim_pending_requests,
    current_policy,
    ensure_control_schema,
    list_release_requests,
    policy_history,
    request_release,
    set_policy_value,
    update_request_status,
)


@pytest.fixture
def con():
    c = duckdb.connect()
    ensure_control_schema(c)
    yield c
    c.close()


def test_readers_work_on_an_empty_or_missing_store() -> None:
    empty = duckdb.connect()  # no tables at all (a read-only reader before the first edit)
    assert current_policy(empty, "acme") == (DEFAULT_POLICY, 0)
    assert policy_history(empty).is_empty() and list_release_requests(empty).is_empty()
    assert claim_pending_requests(empty) == []


def test_customer_overrides_overlay_the_default_and_versions_grow(con: duckdb.DuckDBPyConnection) -> None:
    a = set_policy_value(con, "k", "15", customer_id="acme", changed_by="po")
    b = set_policy_value(con, "epsilon_annual", "6", customer_id=None, changed_by="lead")
    assert (a.policy_version, b.policy_version) == (1, 2)
    acme, v_acme = current_policy(con, "acme")
    other, v_other = current_policy(con, "globex")
    assert (acme.k, acme.epsilon_annual, v_acme) == (15, 6.0, 2)
    assert (other.k, other.epsilon_annual, v_other) == (10, 6.0, 2)
    set_policy_value(con, "z", "2", customer_id="acme", changed_by="po")
    assert current_policy(con, "globex")[1] == 2  # another customer's change is not globex's version
    assert current_policy(con, "acme")[1] == 3
    history = policy_history(con, "globex")
    assert history["key"].to_list() == ["epsilon_annual"]
    assert policy_history(con)["policy_version"].to_list() == [3, 2, 1]
    assert history.row(0, named=True)["old_value"] == "8.0"


def test_invalid_changes_are_refused_and_nothing_is_stored(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("engagement", "wellbeing", "services"):  # acme releases its topics only
        set_policy_value(con, f"table_shares.{table}", "0", customer_id="acme", changed_by="po")
    with pytest.raises(PolicyError, match="k must be between 2 and 1000"):
        set_policy_value(con, "k", "1", customer_id=None, changed_by="po")
    with pytest.raises(PolicyError, match="unknown policy key"):
        set_policy_value(con, "budget", "1", customer_id=None, changed_by="po")
    # a default that leaves the customer's own policy invalid is refused, naming the customer
    with pytest.raises(PolicyError, match="invalid for customer acme"):
        set_policy_value(con, "table_shares.topics", "0", customer_id=None, changed_by="po")
    with pytest.raises(PolicyError, match="changed_by"):
        set_policy_value(con, "k", "12", customer_id=None, changed_by=" ")
    assert policy_history(con).height == 3
    assert current_policy(con, None) == (DEFAULT_POLICY, 0)


def test_release_requests_are_claimed_once(con: duckdb.DuckDBPyConnection) -> None:
    r1 = request_release(con, "acme", ["2025-03", "2025-Q1"], "po")
    r2 = request_release(con, "globex", None, "po")
    with pytest.raises(ValueError, match="YYYY-MM"):
        request_release(con, "acme", ["March"], "po")
    claimed = claim_pending_requests(con)
    assert [(c.request_id, c.periods) for c in claimed] == [(r1, ["2025-03", "2025-Q1"]), (r2, None)]
    assert claim_pending_requests(con) == []
    update_request_status(con, r1, "done", "2 published")
    with pytest.raises(ValueError, match="unknown request status"):
        update_request_status(con, r2, "finished", None)
    with pytest.raises(ValueError, match="no release request"):
        update_request_status(con, "nope", "done", None)
    statuses = dict(zip(*list_release_requests(con).select("request_id", "status").to_dict(as_series=False).values()))
    assert statuses == {r1: "done", r2: "running"}


def test_a_read_only_connection_reads_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "control.duckdb"
    writer = duckdb.connect(str(path))
    ensure_control_schema(writer)
    set_policy_value(writer, "k", "12", customer_id="acme", changed_by="po")
    writer.close()
    reader = duckdb.connect(str(path), read_only=True)
    try:
        assert current_policy(reader, "acme")[0].k == 12
    finally:
        reader.close()
