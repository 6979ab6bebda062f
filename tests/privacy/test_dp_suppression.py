"""What is shown is decided on noisy values only; hidden cells cannot be recovered exactly by subtraction."""

from __future__ import annotations

import re

import polars as pl
import pytest
from privacy_synth import make_tiny, tiny_policy

from privacy.estimates import ESTIMATE_SCHEMA
from privacy.release import draw_release
from privacy.suppression import SUPPRESSION_SQL, apply_thresholds


def _estimate(
    metric: str,
    gate: float,
    *,
    dim="department",
    group="X",
    value=20.0,
    lo=15.0,
    hi=25.0,
    width_limit=None,
    screen=None,
    headcount=50.0,
    threshold=18.225,
) -> dict:
    return dict(
        customer_id="c",
        dimension=dim,
        group_value=group,
        metric=metric,
        value=value,
        ci_low=lo,
        ci_high=hi,
        noise_sd=5.0,
        gate=gate,
        gate_threshold=threshold,
        width_limit=width_limit,
        screen_width=screen if screen is not None else (None if width_limit is None else hi - lo),
        headcount=headcount,
    )


def _cells(rows: list[dict]) -> pl.DataFrame:
    return apply_thresholds(pl.DataFrame(rows, schema=ESTIMATE_SCHEMA), period="2025-03", k=10, k_scores=10)


def test_rule_uses_the_noisy_gate_and_its_public_threshold():
    shown = _cells([_estimate(m, 18.3) for m in ("engaged_employees", "contacts", "uptake_rate")])
    assert (shown["status"] == "published").all() and shown["value"].null_count() == 0
    hidden = _cells([_estimate(m, 18.2) for m in ("engaged_employees", "contacts", "uptake_rate")])
    assert (hidden["status"] == "hidden").all() and hidden["suppressed"].all()
    assert (
        hidden["value"].null_count() == 3 and hidden["ci_low"].null_count() == 3 and hidden["ci_high"].null_count() == 3
    )
    assert set(hidden["reason"]) == {
        "too few people to show reliably (shown only when the group clearly has at least k = 10)"
    }
    no_hc = _cells([_estimate("engaged_employees", 30.0), _estimate("uptake_rate", 30.0, headcount=0.0)])
    assert dict(zip(no_hc["metric"], no_hc["status"])) == {"engaged_employees": "published", "uptake_rate": "hidden"}


def test_a_mean_is_too_uncertain_when_its_interval_is_wider_than_the_limit_and_hidden_beside_a_hidden_count():
    rows = [
        _estimate("engaged_employees", 40.0),
        _estimate("who5_mean", 30.0, value=50.0, lo=42.0, hi=58.0, width_limit=20.0),  # 16 wide: shown
        _estimate("satisfaction_mean", 30.0, value=4.0, lo=3.2, hi=4.6, width_limit=1.0),  # 1.4 wide: too uncertain
        _estimate(
            "wellbeing_low_share", 30.0, value=0.5, lo=0.4, hi=0.6, width_limit=0.3, screen=0.35
        ),  # plain too wide
        _estimate("wellbeing_improved_share", 12.0, value=0.3, lo=0.2, hi=0.4, width_limit=0.3),  # gate below threshold
    ]
    got = {r["metric"]: r for r in _cells(rows).iter_rows(named=True)}
    assert got["who5_mean"]["status"] == "published" and got["who5_mean"]["value"] == 50.0
    assert got["satisfaction_mean"]["status"] == "too_uncertain" and got["satisfaction_mean"]["value"] is None
    assert (
        got["satisfaction_mean"]["reason"] == "too uncertain to show: its 95 % interval would be wider than 1.0 points"
    )
    assert got["wellbeing_low_share"]["status"] == "too_uncertain"
    assert got["wellbeing_low_share"]["reason"].endswith("wider than 30.0 percentage points")
    assert got["wellbeing_improved_share"]["status"] == "hidden"
    assert got["wellbeing_improved_share"]["reason"].startswith("too few people with a score")
    beside_hidden = _cells(
        [
            _estimate("engaged_employees", 10.0),
            _estimate("who5_mean", 30.0, value=50.0, lo=45.0, hi=55.0, width_limit=20.0),
        ]
    )
    mean = beside_hidden.filter(pl.col("metric") == "who5_mean").row(0, named=True)
    assert mean["status"] == "hidden" and "number of people in this group is hidden" in mean["reason"]


def test_sql_reads_only_the_estimates_relation():
    """The threshold SQL can only see post-processed noisy outputs: its input relation has no true count at all."""
    tables = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", SUPPRESSION_SQL))
    assert tables == {"estimates", "counts", "d"}
    assert set(ESTIMATE_SCHEMA) == {
        "customer_id",
        "dimension",
        "group_value",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "noise_sd",
        "gate",
        "gate_threshold",
        "width_limit",
        "screen_width",
        "headcount",
    }
    with pytest.raises(ValueError, match="lack column"):
        apply_thresholds(pl.DataFrame({"customer_id": ["c"], "true_count": [3]}), period="2025-03", k=10, k_scores=10)


def test_true_count_below_k_can_be_published_when_the_noisy_count_passes():
    """Legal has 5 engaged people (true < k). With z = 0 its noisy count passes now and then."""
    con = make_tiny()
    policy = tiny_policy(z=0.0, **{"assumptions.monthly_uptake": 0.9})
    published = hidden = 0
    for _ in range(120):
        cells = draw_release(con, "tiny", "2025-03", policy).cells
        legal = cells.filter((pl.col("group_value") == "Legal") & (pl.col("metric") == "engaged_employees")).row(
            0, named=True
        )
        if legal["suppressed"]:
            hidden += 1
        else:
            published += 1
            assert legal["value"] >= policy.k  # decided on the noisy value, which is what is stored
        if published and hidden:
            break
    assert published and hidden  # the decision varies with the noise, not with the (fixed) true count


def test_subtracting_visible_cells_from_the_total_does_not_recover_a_hidden_cell():
    """Legal (5 people) is usually hidden. The figures are consistent (the departments, with the unpublished
    remainder of people without a public department, add up to the total), so total − visible departments
    is an estimate of the hidden groups *together*: a noisy, differentially private one, never exact."""
    con = make_tiny()
    policy = tiny_policy(**{"assumptions.monthly_uptake": 0.9})
    errors, sds = [], []
    for _ in range(60):
        cells = draw_release(con, "tiny", "2025-03", policy).cells.filter(pl.col("metric") == "engaged_employees")
        values = dict(zip(zip(cells["dimension"], cells["group_value"]), cells["value"]))
        if values[("department", "Legal")] is not None:
            continue
        sds.append(cells.filter(pl.col("group_value") == "Ops")["noise_sd"].item())
        visible = sum(values[("department", d)] or 0.0 for d in ("Ops", "Sales", "Empty"))
        # an attacker who even knows the 5 people without a public department (Tiny 2 + Ghost 3) exactly
        errors.append(values[("total", "all")] - visible - 5 - 5)
    assert len(errors) >= 30
    sd = pl.Series(errors).std()
    assert sd > 0.8 * max(sds)  # at least about one cell's noise: never an exact recovery
    assert sum(abs(e) < 0.5 for e in errors) < len(errors) / 4
