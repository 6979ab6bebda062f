"""Privacy-officer pages write only to the control store, and the notice follows the live policy."""

from __future__ import annotations

import duckdb
import pytest
from dash_helpers import app_as, page_text

from dashboards import control
from dashboards.control import NotAllowed
from privacy.policy import DEFAULT_POLICY
from stores.labels import METRIC_LABELS

ENGAGED = METRIC_LABELS["engaged_employees"]
from stores import control as policy_store
from stores.principal import Principal


def _control_con(home):
    return duckdb.connect(str(home / "control.duckdb"), read_only=True)


def test_policy_edit_is_validated_and_recorded_with_who_and_old_new(dash_home) -> None:
    at = app_as("privacy")
    at.run()
    at.switch_page("views/privacy_policy.py").run()
    at.selectbox(key="policy_scope").select("acme").run()
    at.selectbox(key="policy_key").set_value("k").run()
    at.text_input(key="policy_value").input("12")
    submit = [b for b in at.button if b.label == "Save change"][0]
    submit.click().run()
    assert not at.exception
    assert any("10 → 12" in s.value for s in at.success)
    # the policy table on the same page shows the new value straight away (it was stale before)
    shown = at.dataframe[0].value
    assert shown[shown["Key"] == "k"]["Value"].iloc[0] == "12"
    con = _control_con(dash_home)
    try:
        history = policy_store.policy_history(con, "acme")
        policy, _ = policy_store.current_policy(con, "acme")
        default, _ = policy_store.current_policy(con, None)
    finally:
        con.close()
    row = history.row(0, named=True)
    assert (row["changed_by"], row["scope"], row["key"], row["old_value"], row["new_value"]) == (
        "privacy",
        "acme",
        "k",
        "10",
        "12",
    )
    assert policy.k == 12 and default.k == 10
    # the published store was not touched by the edit
    pub = duckdb.connect(str(dash_home / "published.duckdb"), read_only=True)
    try:
        assert pub.execute("select count(*) from policy_history").fetchone()[0] == 1
    finally:
        pub.close()


def test_invalid_policy_value_is_refused_and_nothing_is_stored(dash_home) -> None:
    at = app_as("privacy")
    at.run()
    at.switch_page("views/privacy_policy.py").run()
    at.selectbox(key="policy_key").set_value("k").run()
    at.text_input(key="policy_value").input("1")
    [b for b in at.button if b.label == "Save change"][0].click().run()
    assert not at.exception
    assert any("Not saved" in e.value and "k must be between 2 and 1000" in e.value for e in at.error)
    con = _control_con(dash_home)
    try:
        assert policy_store.policy_history(con).is_empty()
    finally:
        con.close()


def test_release_request_shows_its_budget_first_and_is_queued(dash_home) -> None:
    at = app_as("privacy")
    at.run()
    at.switch_page("views/privacy_release.py").run()
    at.selectbox(key="release_customer").select("globex").run()
    assert not at.exception
    due = at.dataframe[0].value
    assert list(due.columns) == ["Period", "ρ", "ε", "Window after", "Fits the cap"]
    monthly = DEFAULT_POLICY.release_budget("2025-07").charge.value
    assert due["ρ"].iloc[0] == pytest.approx(round(monthly, 4))  # the default policy's monthly charge
    assert "2025-Q3" in due["Period"].to_list()  # the quarterly tables come due with the quarter's last month
    assert due["Period"].iloc[0] == "2025-07"  # the month after the last released one
    at.multiselect(key="release_periods").set_value(["2025-07", "2025-08"]).run()
    at.button(key="release_request").click().run()
    assert not at.exception
    assert at.success
    con = _control_con(dash_home)
    try:
        requests = policy_store.list_release_requests(con, "globex")
    finally:
        con.close()
    assert requests.height == 1
    req = requests.row(0, named=True)
    assert (req["status"], req["requested_by"], req["periods"]) == ("pending", "privacy", '["2025-07", "2025-08"]')
    assert "pending" in page_text(at)


def test_control_actions_refuse_other_roles(dash_home) -> None:
    hr = Principal("hr_acme", "hr", "acme")
    provider = Principal("provider", "provider", None)
    for who in (hr, provider):
        with pytest.raises(NotAllowed):
            control.set_policy_value(who, "k", "5", customer_id="acme")
        with pytest.raises(NotAllowed):
            control.request_release(who, "acme", ["2025-07"])
        with pytest.raises(NotAllowed):
            control.release_requests(who)


def test_whatif_reacts_to_the_candidate_and_reads_public_headcounts(dash_home) -> None:
    at = app_as("privacy")
    at.run()
    at.switch_page("views/privacy_whatif.py").run()
    assert not at.exception

    def figure(name: str, column: str) -> float:
        table = at.dataframe[0].value
        row = table[(table["Figure"] == name) & (table["Breakdown"] == "total")]
        return float(row[column].iloc[0])

    before = figure(ENGAGED, "± candidate (95 %)")
    assert before == pytest.approx(figure(ENGAGED, "± current (v0)"))
    at.number_input(key="wi_eps").set_value(16.0).run()
    assert figure(ENGAGED, "± candidate (95 %)") < before  # more budget, narrower intervals
    assert any("above 10" in w.value for w in at.warning)  # a risky ε is flagged before it is applied
    at.number_input(key="wi_eps").set_value(8.0).run()
    at.number_input(key="wi_k").set_value(90).run()
    assert figure(ENGAGED, "% shown, candidate") < figure(ENGAGED, "% shown, current")
    # a customer's public headcount (marginals only) drives the preview of its own organisation
    at.selectbox(key="wi_org").set_value("acme").run()
    assert not at.exception
    assert at.dataframe[1].value["Breakdown"].isin(["total", "department"]).any()


def test_notice_needs_no_login_and_follows_the_live_policy(dash_home) -> None:
    officer = Principal("privacy", "privacy_officer", None)
    control.set_policy_value(officer, "k", "15", customer_id="acme")
    at = app_as(None)
    at.query_params["customer"] = "acme"
    at.run()
    at.switch_page("views/notice.py").run()
    assert not at.exception
    text = page_text(at)
    assert "more than **15 people**" in text
    assert "24 months" in text
    other = app_as(None)
    other.query_params["customer"] = "globex"
    other.run()
    other.switch_page("views/notice.py").run()
    assert "more than **10 people**" in page_text(other)
    assert "acme" not in page_text(other)


def test_notice_rejects_a_malformed_customer_code(dash_home) -> None:
    at = app_as(None)
    at.query_params["customer"] = "<script>"
    at.run()
    at.switch_page("views/notice.py").run()
    assert not at.exception
    assert at.error


def test_notice_names_the_controller_from_the_customers_configuration(dash_home) -> None:
    (dash_home / "notice.toml").write_text(
        '[default]\ndpo_contact = "privacy@provider.example"\n'
        '[customers.acme]\ncontroller = "ACME Moderation Services Ltd"\nlegal_basis = "Art. 6(1)(f) GDPR"\n'
    )
    at = app_as(None)
    at.query_params["customer"] = "acme"
    at.run()
    at.switch_page("views/notice.py").run()
    text = page_text(at)
    assert "ACME Moderation Services Ltd" in text and "Art. 6(1)(f) GDPR" in text
    assert "privacy@provider.example" in text  # the default applies where the customer has no value
    for jargon in ("ρ", "zCDP", "δ"):
        assert jargon not in text  # plain language for employees


def test_notice_says_when_published_figures_used_an_older_policy(dash_home) -> None:
    officer = Principal("privacy", "privacy_officer", None)
    control.set_policy_value(officer, "k", "15", customer_id="acme")
    control.set_policy_value(officer, "k", "16", customer_id="acme")  # live version 2; releases drawn under 1
    at = app_as(None)
    at.query_params["customer"] = "acme"
    at.run()
    at.switch_page("views/notice.py").run()
    assert any("earlier version" in i.value for i in at.info)


@pytest.mark.slow  # waits for the lock-retry timeout of a real second process
def test_notice_with_a_busy_control_store_says_so_plainly(dash_home) -> None:
    import subprocess
    import sys

    # another process (the pipeline) holds the control store for writing
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(120)",
            str(dash_home / "control.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        at = app_as(None)
        at.query_params["customer"] = "acme"
        at.run()
        at.switch_page("views/notice.py").run(timeout=60)
        assert not at.exception
        assert any("reload" in i.value for i in at.info)
    finally:
        holder.kill()
        holder.wait()
