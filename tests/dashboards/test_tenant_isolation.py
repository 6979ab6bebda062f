"""An hr user tries to reach another customer through every route; each must give nothing of it.

Routes: the pages, every widget, the ``?customer=`` query parameter, the CSV downloads and
direct calls of the data-access layer.
"""

from __future__ import annotations

import polars as pl
import pytest
from dash_helpers import MARKERS, app_as, page_text

from dashboards import data
from dashboards.data import AccessDenied
from stores.principal import Principal

HR_PAGES = ["views/hr_overview.py", "views/hr_trends.py", "views/hr_breakdown.py"]
ACME = Principal("hr_acme", "hr", "acme")
FOREIGN = ("globex", "initech")
FOREIGN_MARKERS = [f"{round(MARKERS[c]):,}" for c in FOREIGN] + [str(int(MARKERS[c])) for c in FOREIGN]


def _assert_nothing_foreign(text: str) -> None:
    for name in FOREIGN:
        assert name not in text
    for marker in FOREIGN_MARKERS:
        assert marker not in text


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bytes of every file the pages offer, made as a click would make them (spy: the real button still runs)."""
    from dashboards import audit_hooks

    captured: list[bytes] = []
    original = audit_hooks.st.download_button

    def spy(label, data, *args, **kwargs):
        blob = data() if callable(data) else data
        captured.append(blob.encode() if isinstance(blob, str) else blob)
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(audit_hooks.st, "download_button", spy)
    return captured


@pytest.mark.parametrize("page", HR_PAGES)
def test_pages_and_downloads_show_only_the_own_customer(dash_home, downloads, page: str) -> None:
    at = app_as("hr_acme")
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    _assert_nothing_foreign(page_text(at))
    assert downloads, "the page offers a CSV download"
    for blob in downloads:
        _assert_nothing_foreign(blob.decode())
    if page == "views/hr_overview.py":
        assert at.metric[0].value == "4,321"  # its own marker is there


@pytest.mark.parametrize("page", HR_PAGES)
def test_every_widget_value_stays_within_the_own_customer(dash_home, downloads, page: str) -> None:
    at = app_as("hr_acme")
    at.run()
    at.switch_page(page).run()
    for box in list(at.selectbox):
        for option in box.options:
            assert option not in FOREIGN
            box.select(option)
            at.run()
            assert not at.exception
            _assert_nothing_foreign(page_text(at))
    for radio in list(at.radio):
        for option in radio.options:
            radio.set_value(option)
            at.run()
            assert not at.exception
            _assert_nothing_foreign(page_text(at))
            for ms in at.multiselect:
                assert not set(ms.options) & set(FOREIGN)
    for blob in downloads:
        _assert_nothing_foreign(blob.decode())


@pytest.mark.parametrize("page", HR_PAGES + ["views/privacy_budget.py", "views/provider_uptake.py"])
def test_query_parameter_for_another_customer_gives_nothing(dash_home, page: str) -> None:
    at = app_as("hr_acme")
    at.query_params["customer"] = "globex"
    at.run()
    if page not in HR_PAGES:
        with pytest.raises(ValueError):  # not even registered for hr
            at.switch_page(page)
        return
    at.switch_page(page).run()
    assert not at.exception
    _assert_nothing_foreign(page_text(at))


def test_data_layer_refuses_another_customer_whatever_the_arguments(dash_home) -> None:
    for customer in FOREIGN:
        for call in (
            lambda: data.cells(ACME, customer),
            lambda: data.cells(ACME, customer, dimensions=["total"]),
            lambda: data.releases(ACME, customer),
            lambda: data.public_headcount(ACME, customer),
        ):
            with pytest.raises(AccessDenied):
                call()
    with pytest.raises(AccessDenied):
        data.cells(ACME, ["globex"])  # type: ignore[arg-type]
    with pytest.raises(AccessDenied):
        data.cells(ACME, "acme' OR '1'='1")
    with pytest.raises(AccessDenied):  # the ledger is for privacy officers only
        data.budget_ledger(ACME)
    with pytest.raises(AccessDenied):
        data.cells(None)  # type: ignore[arg-type]


def test_data_layer_defaults_to_the_own_customer_only(dash_home) -> None:
    for frame in (
        data.cells(ACME),
        data.releases(ACME),
        data.public_headcount(ACME),
        data.cells(ACME, dimensions=["total", "x') OR TRUE --"], metrics=None),
    ):
        assert not frame.is_empty() or frame.columns
        assert set(frame["customer_id"].to_list()) <= {"acme"}
    assert set(data.cells(ACME)["customer_id"].unique().to_list()) == {"acme"}
    assert data.customers(ACME) == ["acme"]


def test_cache_is_keyed_by_principal(dash_home) -> None:
    provider = Principal("provider", "provider", None)
    everything = data.cells(provider, dimensions=["total"])
    assert set(everything["customer_id"].unique().to_list()) == {"acme", "globex", "initech"}
    # the same query shape right after, for hr, must not be served the provider's cached frame
    mine = data.cells(ACME, dimensions=["total"])
    assert set(mine["customer_id"].unique().to_list()) == {"acme"}
    globex = Principal("hr_globex", "hr", "globex")
    theirs = data.cells(globex, dimensions=["total"])
    assert set(theirs["customer_id"].unique().to_list()) == {"globex"}
    assert (
        mine.filter(pl.col("metric") == "engaged_employees")["value"].to_list()
        != theirs.filter(pl.col("metric") == "engaged_employees")["value"].to_list()
    )


def test_provider_gets_uptake_and_satisfaction_only(dash_home) -> None:
    provider = Principal("provider", "provider", None)
    metrics = set(data.cells(provider)["metric"].unique().to_list())
    assert metrics == {"engaged_employees", "uptake_rate", "contacts", "satisfaction_mean"}
    # the provider sees its own quality measure (satisfaction), never its customers' wellbeing outcomes
    outcomes = ["who5_mean", "wellbeing_low_share", "wellbeing_improved_share"]
    assert data.cells(provider, metrics=outcomes).is_empty()
    assert not set(data.cells(provider)["metric"].unique().to_list()) & set(outcomes)
    assert not data.cells(provider, metrics=["satisfaction_mean"]).is_empty()
    officer = Principal("privacy", "privacy_officer", None)
    assert "who5_mean" in set(data.cells(officer)["metric"].unique().to_list())
