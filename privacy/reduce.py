"""Per-employee reduction in DuckDB: each employee's records of a period → a few bounded rows.

Privacy reason: every output row is a function of *one employee's own records* (and of public
parameters: the period, the policy's bounds, the contract lists, the public key map), so adding
or removing one employee adds or removes only that employee's rows; the privacy unit is
untouched and OpenDP then enforces the bounds again by truncation. The heavy per-event work
runs in DuckDB, so OpenDP measures two small frames (:class:`Reduced`): one *people* row per
engaged employee and a few *usage* rows (services, topics).

Per engaged employee (≥ 1 contact in the period):

* one *home* (department, site, role): the most frequent combination in the period, ties →
  the latest contact, then alphabetical, mapped to its public keys (``key_map``, NULL when it
  has none); so the employee falls in one cell per breakdown;
* ``contacts`` = number of contacts, clipped to ``max_contacts_per_month × months``;
* WHO-5 (0–100 = raw × 4), from the person's scores of the period in time order (day, then
  event id), clamped to the scale; ``has_who5`` 0/1 when there is at least one:

  - ``who5_c`` = latest score − 50 (a *centred* value in [−50, 50]: half the sensitivity of a
    sum on [0, 100]);
  - ``low_pm`` = +1 if the latest score is below 50 (raw ≤ 12, the WHO-5 screening cut-off),
    −1 otherwise (so the share is ½ + Σ low_pm / 2N);
  - ``has_chg`` 0/1 when there are at least two scores, and ``imp_pm`` = +1 if the latest is at
    least 10 points above the first (the minimal clinically important change; raw +3), −1 otherwise;
* satisfaction: the mean rating of the period in hundredths (100–500, rounded), ``sat_c`` =
  that − 300 (centred, in [−200, 200]), ``has_sat`` 0/1;
* people without a score get 0 in every derived column and 0 in the indicator (never a
  midpoint: OpenDP would impute one to a NULL);
* at most ``max_services_per_period`` services and ``max_topics_per_period`` topics: the most
  used, ties → latest, then alphabetical; only values of the contract lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from privacy.contract import SATISFACTION_RANGE, SERVICES, TOPICS, WHO5_RAW_RANGE
from privacy.periods import Period
from privacy.policy import ReleasePolicy
from privacy.structure import BREAKDOWNS

WHO5_SCALE = 4  # raw 0-25 → 0-100
SAT_SCALE = 100  # mean 1-5 → 100-500 (hundredths)
WHO5_MAX = WHO5_RAW_RANGE[1] * WHO5_SCALE  # 100
WHO5_MID = WHO5_MAX // 2  # 50: the centre of the scale, and the screening cut-off
WHO5_LOW_BELOW = 50  # latest score below 50 (0-100) = likely low wellbeing (WHO-5 screening)
WHO5_IMPROVED_BY = 10  # latest at least 10 points above the first = clinically important change
SAT_MIN = SATISFACTION_RANGE[0] * SAT_SCALE  # 100
SAT_MAX = SATISFACTION_RANGE[1] * SAT_SCALE  # 500
SAT_MID = (SAT_MIN + SAT_MAX) // 2  # 300
WHO5_C_BOUND = WHO5_MAX - WHO5_MID  # 50: |who5_c| ≤ 50
SAT_C_BOUND = SAT_MAX - SAT_MID  # 200: |sat_c| ≤ 200

METRICS: tuple[str, ...] = ("contacts", "has_who5", "who5_c", "low_pm", "has_chg", "imp_pm", "has_sat", "sat_c")
# Columns of the people frame besides ``employee`` (whose type is the raw store's).
PEOPLE_SCHEMA: dict[str, pl.DataType] = {
    "department": pl.String(),  # public key after roll-up; NULL = no public key (total only)
    "site": pl.String(),
    "role": pl.String(),
    **{m: pl.Int64() for m in METRICS},
}
USAGE_SCHEMA: dict[str, pl.DataType] = {"dimension": pl.String(), "group_value": pl.String()}


@dataclass(frozen=True)
class Reduced:
    """The bounded per-employee frames of one customer-period that OpenDP measures.

    ``people``: one row per engaged employee: ``employee``, the public key of the employee's
    home in each breakdown (``department``, ``site``, ``role``; NULL when the home has no public
    key: such people count in the total only) and the bounded metrics :data:`METRICS`.
    ``usage``: one row per (employee, kept service or topic): ``employee``, ``dimension``
    ('service' | 'topic'), ``group_value``.
    """

    people: pl.DataFrame
    usage: pl.DataFrame

    def cells(self) -> pl.DataFrame:
        """Long view, one row per (employee, cell touched): part, dimension, group_value, metrics.

        For inspection and tests (the cells one employee can change); not the measured layout.
        """
        zeros = [pl.lit(0, pl.Int64).alias(m) for m in METRICS]
        pieces = [
            self.people.select(
                "employee",
                pl.lit("people").alias("part"),
                pl.lit("total").alias("dimension"),
                pl.lit("all").alias("group_value"),
                *METRICS,
            )
        ]
        for dim in BREAKDOWNS:
            pieces.append(
                self.people.filter(pl.col(dim).is_not_null()).select(
                    "employee",
                    pl.lit("people").alias("part"),
                    pl.lit(dim).alias("dimension"),
                    pl.col(dim).alias("group_value"),
                    *METRICS,
                )
            )
        pieces.append(self.usage.select("employee", pl.lit("usage").alias("part"), "dimension", "group_value", *zeros))
        return pl.concat(pieces)


# The events of one customer-period; ``age`` ascending = latest first.
_EVENTS_CTE = """
ev AS MATERIALIZED (
    SELECT employee, department, site, role, service, topic, occurred_on, event_id, who5_raw, satisfaction,
           date_diff('day', occurred_on, DATE '9999-12-31') AS age
    FROM events
    WHERE customer_id = $customer AND occurred_on >= $start AND occurred_on < $end
)"""

# One row per engaged employee. Every choice below is an aggregate of one employee's rows (no
# window): arg_min over a struct key orders lexicographically, so the key spells out the
# documented order.
_PEOPLE_CTES = """
-- home: most frequent (department, site, role), ties -> latest contact, then alphabetical (NULLs last)
home AS (
    SELECT employee, h.department, h.site, h.role
    FROM (SELECT employee,
                 arg_min({'department': department, 'site': site, 'role': role},
                         {'n': -n, 'age': age, 'd': department, 'sn': site IS NULL, 's': site,
                          'rn': role IS NULL, 'r': role}) AS h
          FROM (SELECT employee, department, site, role, count(*) AS n, min(age) AS age
                FROM ev GROUP BY employee, department, site, role)
          GROUP BY employee)
),
per AS (
    SELECT employee,
           least(count(*), $max_contacts) AS contacts,
           count(who5_raw) AS n_who5,
           -- first and last score of the period: by day, then event id
           arg_max(who5_raw, {'d': occurred_on, 'e': event_id}) FILTER (WHERE who5_raw IS NOT NULL) AS last_raw,
           arg_min(who5_raw, {'d': occurred_on, 'e': event_id}) FILTER (WHERE who5_raw IS NOT NULL) AS first_raw,
           avg(satisfaction) AS sat_mean
    FROM ev GROUP BY employee
),
-- clamped to the scale. DuckDB's least/greatest ignore NULLs (greatest(NULL, 0) = 0), so every
-- clamp is guarded: a person without a score keeps NULL here and gets 0 + indicator 0 below.
scored AS (
    SELECT employee, contacts, n_who5, sat_mean,
           CASE WHEN last_raw IS NULL THEN NULL
                ELSE least(greatest(last_raw, $who5_lo), $who5_hi) * $who5_scale END AS who5_last,
           CASE WHEN first_raw IS NULL THEN NULL
                ELSE least(greatest(first_raw, $who5_lo), $who5_hi) * $who5_scale END AS who5_first,
           CASE WHEN sat_mean IS NULL THEN NULL
                ELSE round(least(greatest(sat_mean, $sat_lo), $sat_hi) * $sat_scale)::BIGINT END AS sat_h
    FROM per
)"""
_PEOPLE_SELECT = """
-- each home value -> its public key after roll-up (key_map, public): NULL when it has none (total only)
SELECT scored.employee,
       ($department_keys::VARCHAR[])[list_position($department_sources::VARCHAR[], home.department)] AS department,
       ($site_keys::VARCHAR[])[list_position($site_sources::VARCHAR[], home.site)] AS site,
       ($role_keys::VARCHAR[])[list_position($role_sources::VARCHAR[], home.role)] AS role,
       scored.contacts::BIGINT AS contacts,
       -- no score → 0 in every derived column and in its indicator, never a bound or a midpoint
       (who5_last IS NOT NULL)::BIGINT AS has_who5,
       coalesce(who5_last - $who5_mid, 0)::BIGINT AS who5_c,
       (CASE WHEN who5_last IS NULL THEN 0 WHEN who5_last < $low_below THEN 1 ELSE -1 END)::BIGINT AS low_pm,
       (n_who5 >= 2)::BIGINT AS has_chg,
       (CASE WHEN n_who5 < 2 THEN 0 WHEN who5_last - who5_first >= $improved_by THEN 1 ELSE -1 END)::BIGINT AS imp_pm,
       (sat_mean IS NOT NULL)::BIGINT AS has_sat,
       coalesce(sat_h - $sat_mid, 0)::BIGINT AS sat_c
FROM scored JOIN home USING (employee)
"""
PEOPLE_SQL = f"WITH {_EVENTS_CTE},{_PEOPLE_CTES}\n{_PEOPLE_SELECT}"

# The max_services most used services and max_topics most used topics of each employee, ties ->
# latest, then alphabetical; only values of the contract lists.
_USAGE_CTES = """
svc AS (
    SELECT employee, unnest(arg_min(service, {'n': -n, 'age': age, 'v': service}, $max_services)) AS group_value
    FROM (SELECT employee, service, count(*) AS n, min(age) AS age
          FROM ev WHERE $with_services AND list_contains($services, service) GROUP BY employee, service)
    GROUP BY employee
),
top AS (
    SELECT employee, unnest(arg_min(topic, {'n': -n, 'age': age, 'v': topic}, $max_topics)) AS group_value
    FROM (SELECT employee, topic, count(*) AS n, min(age) AS age
          FROM ev WHERE $with_topics AND topic IS NOT NULL AND list_contains($topics, topic) GROUP BY employee, topic)
    GROUP BY employee
)"""
_USAGE_SELECT = """
SELECT employee, 'service' AS dimension, group_value FROM svc
UNION ALL
SELECT employee, 'topic', group_value FROM top
"""
USAGE_SQL = f"WITH {_EVENTS_CTE},{_USAGE_CTES}\n{_USAGE_SELECT}"

# The whole reduction as CTEs ``people`` and ``usage`` over one scan of the events, for callers that
# aggregate it in SQL (the exact, non-private baseline of the benchmarks). Parameters: both sets above.
REDUCTION_CTES = (
    f"{_EVENTS_CTE},{_PEOPLE_CTES},\npeople AS ({_PEOPLE_SELECT}),{_USAGE_CTES},\nusage AS ({_USAGE_SELECT})"
)


# --- many periods of one customer in one pass ---------------------------------------------
# The same per-employee definitions as above, with every grouping keyed by (period, employee):
# the events of the customer are read once (the outer date range lets DuckDB skip the row groups
# of other customers and months), each event is joined to every requested period that contains
# it (a month and its quarter), and each (period, employee)'s rows are reduced exactly as a
# single period's. The public key map of each period is a relation ``km`` (period, dimension,
# source, group_value) instead of list parameters.
_MULTI_EVENTS_CTE = """
pp AS (
    SELECT unnest($p_period::VARCHAR[]) AS period, unnest($p_start::DATE[]) AS p_start,
           unnest($p_end::DATE[]) AS p_end, unnest($p_max_contacts::BIGINT[]) AS max_contacts,
           unnest($p_services::BOOLEAN[]) AS with_services, unnest($p_topics::BOOLEAN[]) AS with_topics
),
km AS (
    SELECT unnest($km_period::VARCHAR[]) AS period, unnest($km_dimension::VARCHAR[]) AS dimension,
           unnest($km_source::VARCHAR[]) AS source, unnest($km_key::VARCHAR[]) AS group_value
),
ev AS MATERIALIZED (
    SELECT pp.period, max_contacts, with_services, with_topics,
           employee, department, site, role, service, topic, occurred_on, event_id, who5_raw, satisfaction,
           date_diff('day', occurred_on, DATE '9999-12-31') AS age
    FROM events JOIN pp ON occurred_on >= pp.p_start AND occurred_on < pp.p_end
    WHERE customer_id = $customer AND occurred_on >= $start AND occurred_on < $end
)"""
_MULTI_PEOPLE_CTES = """
home AS (
    SELECT period, employee, h.department, h.site, h.role
    FROM (SELECT period, employee,
                 arg_min({'department': department, 'site': site, 'role': role},
                         {'n': -n, 'age': age, 'd': department, 'sn': site IS NULL, 's': site,
                          'rn': role IS NULL, 'r': role}) AS h
          FROM (SELECT period, employee, department, site, role, count(*) AS n, min(age) AS age
                FROM ev GROUP BY period, employee, department, site, role)
          GROUP BY period, employee)
),
per AS (
    SELECT period, employee,
           least(count(*), any_value(max_contacts)) AS contacts,
           count(who5_raw) AS n_who5,
           arg_max(who5_raw, {'d': occurred_on, 'e': event_id}) FILTER (WHERE who5_raw IS NOT NULL) AS last_raw,
           arg_min(who5_raw, {'d': occurred_on, 'e': event_id}) FILTER (WHERE who5_raw IS NOT NULL) AS first_raw,
           avg(satisfaction) AS sat_mean
    FROM ev GROUP BY period, employee
),
scored AS (
    SELECT period, employee, contacts, n_who5, sat_mean,
           CASE WHEN last_raw IS NULL THEN NULL
                ELSE least(greatest(last_raw, $who5_lo), $who5_hi) * $who5_scale END AS who5_last,
           CASE WHEN first_raw IS NULL THEN NULL
                ELSE least(greatest(first_raw, $who5_lo), $who5_hi) * $who5_scale END AS who5_first,
           CASE WHEN sat_mean IS NULL THEN NULL
                ELSE round(least(greatest(sat_mean, $sat_lo), $sat_hi) * $sat_scale)::BIGINT END AS sat_h
    FROM per
)"""
_MULTI_PEOPLE_SELECT = """
SELECT scored.period, scored.employee,
       kd.group_value AS department, ks.group_value AS site, kr.group_value AS role,
       scored.contacts::BIGINT AS contacts,
       (who5_last IS NOT NULL)::BIGINT AS has_who5,
       coalesce(who5_last - $who5_mid, 0)::BIGINT AS who5_c,
       (CASE WHEN who5_last IS NULL THEN 0 WHEN who5_last < $low_below THEN 1 ELSE -1 END)::BIGINT AS low_pm,
       (n_who5 >= 2)::BIGINT AS has_chg,
       (CASE WHEN n_who5 < 2 THEN 0 WHEN who5_last - who5_first >= $improved_by THEN 1 ELSE -1 END)::BIGINT AS imp_pm,
       (sat_mean IS NOT NULL)::BIGINT AS has_sat,
       coalesce(sat_h - $sat_mid, 0)::BIGINT AS sat_c
FROM scored JOIN home USING (period, employee)
LEFT JOIN km kd ON kd.period = home.period AND kd.dimension = 'department' AND kd.source = home.department
LEFT JOIN km ks ON ks.period = home.period AND ks.dimension = 'site' AND ks.source = home.site
LEFT JOIN km kr ON kr.period = home.period AND kr.dimension = 'role' AND kr.source = home.role
"""
_MULTI_USAGE_CTES = """
svc AS (
    SELECT period, employee,
           unnest(arg_min(service, {'n': -n, 'age': age, 'v': service}, $max_services)) AS group_value
    FROM (SELECT period, employee, service, count(*) AS n, min(age) AS age
          FROM ev WHERE with_services AND list_contains($services, service) GROUP BY period, employee, service)
    GROUP BY period, employee
),
top AS (
    SELECT period, employee,
           unnest(arg_min(topic, {'n': -n, 'age': age, 'v': topic}, $max_topics)) AS group_value
    FROM (SELECT period, employee, topic, count(*) AS n, min(age) AS age
          FROM ev WHERE with_topics AND topic IS NOT NULL AND list_contains($topics, topic)
          GROUP BY period, employee, topic)
    GROUP BY period, employee
)"""
_MULTI_USAGE_SELECT = """
SELECT period, employee, 'service' AS dimension, group_value FROM svc
UNION ALL
SELECT period, employee, 'topic', group_value FROM top
"""
PEOPLE_PERIODS_SQL = f"WITH {_MULTI_EVENTS_CTE},{_MULTI_PEOPLE_CTES}\n{_MULTI_PEOPLE_SELECT}"
USAGE_PERIODS_SQL = f"WITH {_MULTI_EVENTS_CTE},{_MULTI_USAGE_CTES}\n{_MULTI_USAGE_SELECT}"
# Both parts from ONE materialisation of the events (people rows have NULL dimension, usage rows
# NULL metrics; ``part`` tells them apart).
_PEOPLE_COLUMNS = ("department", "site", "role", *METRICS)
BOTH_PERIODS_SQL = (
    f"WITH {_MULTI_EVENTS_CTE},{_MULTI_PEOPLE_CTES},{_MULTI_USAGE_CTES},\n"
    f"people AS ({_MULTI_PEOPLE_SELECT}),\nusage AS ({_MULTI_USAGE_SELECT})\n"
    "SELECT 'people' AS part, period, employee, "
    + ", ".join(_PEOPLE_COLUMNS)
    + ", NULL::VARCHAR AS dimension, NULL::VARCHAR AS group_value FROM people\n"
    "UNION ALL\nSELECT 'usage', period, employee, "
    + ", ".join(f"NULL AS {c}" for c in _PEOPLE_COLUMNS)
    + ", dimension, group_value FROM usage"
)


@dataclass(frozen=True)
class PeriodRequest:
    """One period of :func:`reduce_periods`: its bounds, public key map and which usage tables it measures."""

    period: Period
    bounds: Bounds
    key_map: pl.DataFrame
    with_services: bool = True
    with_topics: bool = True


def reduce_periods(
    con: duckdb.DuckDBPyConnection, customer_id: str, requests: list[PeriodRequest]
) -> dict[str, Reduced]:
    """:func:`reduce_period` of several periods of one customer in two DuckDB statements.

    Returns, per period label, exactly the frames :func:`reduce_period` gives for that period
    alone (tested): every grouping is keyed by (period, employee), so each output row is still a
    function of one employee's records of one period. The customer's events are read once.
    All requests must share the service and topic bounds (the policy's; they do not depend on
    the period).
    """
    if not requests:
        return {}
    labels = [r.period.label for r in requests]
    if len(set(labels)) != len(labels):
        raise ValueError("reduce_periods: a period was requested twice")
    if len({(r.bounds.services, r.bounds.topics) for r in requests}) != 1:
        raise ValueError("reduce_periods: the periods must share the service and topic bounds")
    km = pl.concat(
        [r.key_map.filter(pl.col("group_value").is_not_null()).select(
            pl.lit(r.period.label).alias("period"), "dimension", "source", "group_value") for r in requests]
    )  # fmt: skip
    common = {
        "customer": customer_id,
        "start": min(r.period.start for r in requests),
        "end": max(r.period.end for r in requests),
        "p_period": labels,
        "p_start": [r.period.start for r in requests],
        "p_end": [r.period.end for r in requests],
        "p_max_contacts": [r.bounds.contacts for r in requests],
        "p_services": [r.with_services for r in requests],
        "p_topics": [r.with_topics for r in requests],
        "km_period": km["period"].to_list(),
        "km_dimension": km["dimension"].to_list(),
        "km_source": km["source"].to_list(),
        "km_key": km["group_value"].to_list(),
    }
    people_params_ = {
        k: v
        for k, v in people_params(customer_id, requests[0].period, requests[0].bounds, requests[0].key_map).items()
        if k not in ("customer", "start", "end", "max_contacts") and not k.endswith(("_sources", "_keys"))
    }
    both = con.execute(BOTH_PERIODS_SQL, {
        **common, **people_params_, "max_services": requests[0].bounds.services,
        "max_topics": requests[0].bounds.topics, "services": list(SERVICES), "topics": list(TOPICS),
    }).pl()  # fmt: skip
    parts = both.partition_by("part", as_dict=True, include_key=False)
    empty = both.clear().drop("part")
    people = parts.get(("people",), empty).select(
        "period", "employee", *[pl.col(c).cast(t) for c, t in PEOPLE_SCHEMA.items()]
    )
    usage = parts.get(("usage",), empty).select(
        "period", "employee", *[pl.col(c).cast(t) for c, t in USAGE_SCHEMA.items()]
    )
    people_by = people.partition_by("period", as_dict=True, include_key=False)
    usage_by = usage.partition_by("period", as_dict=True, include_key=False)
    return {
        label: Reduced(
            people_by.get((label,), people.clear().drop("period")),
            usage_by.get((label,), usage.clear().drop("period")),
        )
        for label in labels
    }


@dataclass(frozen=True)
class Bounds:
    """Per-employee contribution bounds of one period (public, from the policy and the contract).

    :meth:`column_bounds` gives each measured column's (lower, upper) clip: OpenDP clips to it
    again, and the larger magnitude is the column's per-person sensitivity.
    """

    contacts: int
    services: int
    topics: int

    @classmethod
    def for_period(cls, policy: ReleasePolicy, period: Period) -> Bounds:
        return cls(
            contacts=policy.max_contacts_per_month * period.n_months,
            services=policy.max_services_per_period,
            topics=policy.max_topics_per_period,
        )

    def column_bounds(self) -> dict[str, tuple[int, int]]:
        return {
            "contacts": (0, self.contacts),
            "has_who5": (0, 1),
            "who5_c": (-WHO5_C_BOUND, WHO5_C_BOUND),
            "low_pm": (-1, 1),
            "has_chg": (0, 1),
            "imp_pm": (-1, 1),
            "has_sat": (0, 1),
            "sat_c": (-SAT_C_BOUND, SAT_C_BOUND),
        }


def reduce_period(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    period: Period,
    bounds: Bounds,
    key_map: pl.DataFrame,
    *,
    with_services: bool = True,
    with_topics: bool = True,
) -> Reduced:
    """The bounded per-employee frames (:class:`Reduced`) of one customer-period."""
    return Reduced(
        reduce_people(con, customer_id, period, bounds, key_map),
        reduce_usage(con, customer_id, period, bounds, with_services=with_services, with_topics=with_topics),
    )


def reduce_people(
    con: duckdb.DuckDBPyConnection, customer_id: str, period: Period, bounds: Bounds, key_map: pl.DataFrame
) -> pl.DataFrame:
    """The people frame of :class:`Reduced`: one row per engaged employee (:data:`PEOPLE_SQL`)."""
    raw = con.execute(PEOPLE_SQL, people_params(customer_id, period, bounds, key_map)).pl()
    return raw.select("employee", *[pl.col(c).cast(t) for c, t in PEOPLE_SCHEMA.items()])


def reduce_usage(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    period: Period,
    bounds: Bounds,
    *,
    with_services: bool = True,
    with_topics: bool = True,
) -> pl.DataFrame:
    """The usage frame of :class:`Reduced`: one row per (employee, kept service or topic) (:data:`USAGE_SQL`)."""
    params = usage_params(customer_id, period, bounds, with_services=with_services, with_topics=with_topics)
    raw = con.execute(USAGE_SQL, params).pl()
    return raw.select("employee", *[pl.col(c).cast(t) for c, t in USAGE_SCHEMA.items()])


def people_params(customer_id: str, period: Period, bounds: Bounds, key_map: pl.DataFrame) -> dict[str, object]:
    """The parameters of :data:`PEOPLE_SQL` (all public)."""
    return {
        "customer": customer_id,
        "start": period.start,
        "end": period.end,
        "max_contacts": bounds.contacts,
        "who5_lo": WHO5_RAW_RANGE[0],
        "who5_hi": WHO5_RAW_RANGE[1],
        "who5_scale": WHO5_SCALE,
        "who5_mid": WHO5_MID,
        "low_below": WHO5_LOW_BELOW,
        "improved_by": WHO5_IMPROVED_BY,
        "sat_lo": SATISFACTION_RANGE[0],
        "sat_hi": SATISFACTION_RANGE[1],
        "sat_scale": SAT_SCALE,
        "sat_mid": SAT_MID,
        **key_lists(key_map),
    }


def usage_params(
    customer_id: str, period: Period, bounds: Bounds, *, with_services: bool = True, with_topics: bool = True
) -> dict[str, object]:
    """The parameters of :data:`USAGE_SQL` (all public)."""
    return {
        "customer": customer_id,
        "start": period.start,
        "end": period.end,
        "max_services": bounds.services,
        "max_topics": bounds.topics,
        "with_services": with_services,
        "with_topics": with_topics,
        "services": list(SERVICES),
        "topics": list(TOPICS),
    }


def key_lists(key_map: pl.DataFrame) -> dict[str, list[str]]:
    """The public key map as SQL parameters: ``<dim>_sources`` and ``<dim>_keys`` (sources without a key left out)."""
    out: dict[str, list[str]] = {}
    for dim in BREAKDOWNS:
        m = key_map.filter((pl.col("dimension") == dim) & pl.col("group_value").is_not_null())
        out[f"{dim}_sources"] = m["source"].to_list()
        out[f"{dim}_keys"] = m["group_value"].to_list()
    return out
