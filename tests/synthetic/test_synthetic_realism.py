"""The synthetic export looks like real provider usage (issue 2's realism properties)."""

from __future__ import annotations

import polars as pl

from pipeline.synthetic import GeneratedFiles


def _typed(events: pl.DataFrame) -> pl.DataFrame:
    return events.with_columns(
        pl.col("occurred_on").str.to_date(),
        pl.col("duration_min", "who5_raw", "satisfaction").cast(pl.Int64),
    )


def test_about_fifteen_percent_of_employees_engage(clean_csv: GeneratedFiles, clean_events: pl.DataFrame) -> None:
    engaged = clean_events["client_ref"].n_unique()
    share = engaged / (3 * 3000)  # employees is the average number of distinct employees per customer
    assert 0.12 <= share <= 0.18, share
    per_customer = clean_events.group_by("customer_id").agg(pl.col("client_ref").n_unique())
    assert per_customer.height == 3


def test_contacts_per_employee_are_heavy_tailed(clean_events: pl.DataFrame) -> None:
    contacts = clean_events.group_by("client_ref").len()["len"]
    assert ((contacts >= 1) & (contacts <= 5)).mean() >= 0.7  # most have 1-5 contacts
    assert (contacts >= 50).sum() >= 3  # a few have 50+
    assert (contacts >= 50).mean() < 0.06
    assert contacts.max() >= 10 * contacts.median()


def test_several_departments_are_smaller_than_ten(headcount: pl.DataFrame) -> None:
    per_dept = (
        headcount.with_columns(pl.col("headcount").cast(pl.Int64))
        .group_by("customer_id", "as_of", "department")
        .agg(pl.col("headcount").sum())
        .group_by("customer_id", "department")
        .agg(pl.col("headcount").max())
    )
    small = per_dept.filter(pl.col("headcount") < 10).group_by("customer_id").len()
    assert small.height == 3 and (small["len"] >= 2).all()
    assert per_dept["headcount"].max() >= 500  # next to large departments
    sites = headcount.group_by("customer_id").agg(pl.col("site").n_unique())
    assert (sites["site"] >= 2).all()


def test_who5_improves_with_one_to_one_sessions(clean_events: pl.DataFrame) -> None:
    ev = _typed(clean_events).sort("client_ref", "occurred_on", "event_id")
    scored = ev.filter(pl.col("who5_raw").is_not_null())
    per_client = (
        ev.group_by("client_ref")
        .agg((pl.col("service") == "one_to_one").sum().alias("sessions"))
        .join(
            scored.group_by("client_ref", maintain_order=True).agg(
                pl.col("who5_raw").first().alias("first"), pl.col("who5_raw").last().alias("last"), pl.len().alias("n")
            ),
            on="client_ref",
        )
        .filter((pl.col("sessions") >= 4) & (pl.col("n") >= 3))
    )
    assert per_client.height >= 30
    change = per_client["last"] - per_client["first"]
    assert change.mean() >= 2.0  # improves on average with sessions
    assert (change > 0).mean() >= 0.5  # for many clients
    assert (change < 0).sum() > 0  # but not for everyone (noise, non-responders)
    first_scores = scored.group_by("client_ref", maintain_order=True).first()["who5_raw"]
    assert first_scores.mean() < 13  # people seeking help start low (WHO-5 raw 0-25)


def test_seasonal_peaks_in_january_and_autumn(clean_events: pl.DataFrame) -> None:
    per_month = dict(_typed(clean_events).group_by(pl.col("occurred_on").dt.month().alias("m")).len().iter_rows())
    summer = per_month[7] + per_month[8]
    assert per_month[1] > 1.2 * per_month[7]
    assert per_month[10] + per_month[11] > 1.2 * summer
    assert per_month[1] == max(per_month.values()) or per_month[11] == max(per_month.values())


def test_service_mix_scores_and_topics(clean_events: pl.DataFrame) -> None:
    ev = _typed(clean_events)
    share = dict(ev.group_by("service").len().with_columns(pl.col("len") / ev.height).iter_rows())
    top_two = sorted(share, key=share.get, reverse=True)[:2]
    assert set(top_two) == {"app", "one_to_one"}
    assert 0 < share["crisis_support"] < 0.05
    durations = dict(ev.group_by("service").agg(pl.col("duration_min").median()).iter_rows())
    assert durations["app"] < 10 <= durations["webinar"] and 40 <= durations["one_to_one"] <= 60
    assert (ev.filter(pl.col("service") == "app")["duration_min"] == 0).any()
    sat = ev["satisfaction"].drop_nulls()
    assert (sat >= 4).mean() >= 0.65
    topics = ev["topic"].drop_nulls().value_counts(sort=True)
    assert topics["topic"][0] == "stress" and topics.height == 8
