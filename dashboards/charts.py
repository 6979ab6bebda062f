"""Pure Altair chart builders (DataFrame in, chart out): one colour per metric, labelled axes,
95 % interval bands or error bars drawn from ``ci_low``/``ci_high``.

Charts carry their rows inline (:func:`dashboards.frames.chart_data`), never a pandas frame:
see :mod:`dashboards.frames` for the deadlock that rules pandas out of render paths.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from dashboards.frames import chart_data

# One palette across all pages (colour-blind safe, Okabe-Ito).
METRIC_COLOURS: dict[str, str] = {
    "engaged_employees": "#0072B2",
    "uptake_rate": "#009E73",
    "contacts": "#E69F00",
    "who5_mean": "#CC79A7",
    "satisfaction_mean": "#56B4E9",
}
CATEGORY_PALETTE: list[str] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#7F7F7F", "#8C564B",
]
METRIC_LABELS: dict[str, str] = {
    "engaged_employees": "Engaged employees",
    "uptake_rate": "Uptake rate",
    "contacts": "Contacts",
    "who5_mean": "WHO-5 (0–100)",
    "wellbeing_low_share": "Low wellbeing (WHO-5 < 50)",
    "wellbeing_improved_share": "Improved ≥ 10 points",
    "satisfaction_mean": "Satisfaction (1–5)",
}
METRIC_FORMATS: dict[str, str] = {
    "engaged_employees": ",.0f",
    "uptake_rate": ".1%",
    "contacts": ",.0f",
    "who5_mean": ".1f",
    "wellbeing_low_share": ".0%",
    "wellbeing_improved_share": ".0%",
    "satisfaction_mean": ".2f",
}
HEIGHT = 260


def _axis_format(metric: str) -> str:
    return METRIC_FORMATS.get(metric, ",.2f")


def trend_with_band(frame: pl.DataFrame, metric: str, *, series: str | None = None) -> alt.Chart:
    """Line over ``month`` (a date column) of ``value`` with a shaded 95 % interval band.

    ``series`` names a column to draw one line per group (site/department comparison).
    """
    label = METRIC_LABELS.get(metric, metric)
    fmt = _axis_format(metric)
    data = frame.sort("month").with_columns(label=pl.col("month").dt.strftime("%b %Y"))
    order = data["label"].unique(maintain_order=True).to_list()
    base = alt.Chart(chart_data(data)).encode(
        x=alt.X("label:O", title="Month", sort=order, axis=alt.Axis(labelAngle=-45, labelOverlap=True)),
    )
    if series:
        colour = alt.Color(f"{series}:N", title=series.replace("_", " ").capitalize(),
                           scale=alt.Scale(range=CATEGORY_PALETTE))
        band = base.mark_area(opacity=0.15).encode(y="ci_low:Q", y2="ci_high:Q", color=colour)
        line = base.mark_line(point=True).encode(
            y=alt.Y("value:Q", title=label, axis=alt.Axis(format=fmt)),
            color=colour,
            tooltip=[alt.Tooltip("label:O", title="Month"), f"{series}:N",
                     alt.Tooltip("value:Q", format=fmt, title=label),
                     alt.Tooltip("ci_low:Q", format=fmt, title="95 % low"),
                     alt.Tooltip("ci_high:Q", format=fmt, title="95 % high")],
        )
    else:
        colour_value = METRIC_COLOURS.get(metric, "#0072B2")
        band = base.mark_area(opacity=0.2, color=colour_value).encode(y="ci_low:Q", y2="ci_high:Q")
        line = base.mark_line(point=alt.OverlayMarkDef(color=colour_value), color=colour_value).encode(
            y=alt.Y("value:Q", title=label, axis=alt.Axis(format=fmt)),
            tooltip=[alt.Tooltip("label:O", title="Month"),
                     alt.Tooltip("value:Q", format=fmt, title=label),
                     alt.Tooltip("ci_low:Q", format=fmt, title="95 % low"),
                     alt.Tooltip("ci_high:Q", format=fmt, title="95 % high")],
        )
    return (band + line).properties(height=HEIGHT, title=f"{label} (band: 95 % interval)")


def bars_with_error(frame: pl.DataFrame, metric: str, *, category: str = "group_value") -> alt.Chart:
    """Horizontal bars of ``value`` per ``category`` with 95 % error bars (suppressed rows excluded)."""
    label = METRIC_LABELS.get(metric, metric)
    fmt = _axis_format(metric)
    data = frame.filter(pl.col("value").is_not_null()).sort("value", descending=True)
    order = data[category].to_list()
    base = alt.Chart(chart_data(data)).encode(y=alt.Y(f"{category}:N", title=None, sort=order))
    bars = base.mark_bar(color=METRIC_COLOURS.get(metric, "#0072B2"), opacity=0.85).encode(
        x=alt.X("value:Q", title=f"{label} (line: 95 % interval)", axis=alt.Axis(format=fmt)),
        tooltip=[f"{category}:N", alt.Tooltip("value:Q", format=fmt, title=label),
                 alt.Tooltip("ci_low:Q", format=fmt, title="95 % low"),
                 alt.Tooltip("ci_high:Q", format=fmt, title="95 % high")],
    )
    errors = base.mark_rule(color="#333333", strokeWidth=2).encode(x="ci_low:Q", x2="ci_high:Q")
    # a step height: "fit" autosizing does not apply to a discrete axis
    return (bars + errors).properties(height=alt.Step(36), title=label)


def stacked_share(frame: pl.DataFrame, *, x: str, colour: str, value: str = "value", title: str) -> alt.Chart:
    """Normalised stacked bars (e.g. the service mix per customer)."""
    return (
        alt.Chart(chart_data(frame))
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=x.replace("_", " ").capitalize()),
            y=alt.Y(f"{value}:Q", stack="normalize", title="Share of engaged employees",
                    axis=alt.Axis(format="%")),
            color=alt.Color(f"{colour}:N", title=colour.capitalize(), scale=alt.Scale(range=CATEGORY_PALETTE)),
            tooltip=[f"{x}:N", f"{colour}:N", alt.Tooltip(f"{value}:Q", format=",.0f", title="Engaged (approx.)")],
        )
        .properties(height=HEIGHT, title=title)
    )


def multi_line(frame: pl.DataFrame, *, y: str, series: str, y_title: str, fmt: str, title: str) -> alt.Chart:
    """Plain lines over ``month`` per ``series`` (provider trend across customers)."""
    data = frame.sort("month").with_columns(label=pl.col("month").dt.strftime("%b %Y"))
    order = data["label"].unique(maintain_order=True).to_list()
    return (
        alt.Chart(chart_data(data))
        .mark_line(point=True)
        .encode(
            x=alt.X("label:O", title="Month", sort=order, axis=alt.Axis(labelAngle=-45, labelOverlap=True)),
            y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=fmt)),
            color=alt.Color(f"{series}:N", title=series.replace("_", " ").capitalize(),
                            scale=alt.Scale(range=CATEGORY_PALETTE)),
            tooltip=[alt.Tooltip("label:O", title="Month"), f"{series}:N", alt.Tooltip(f"{y}:Q", format=fmt)],
        )
        .properties(height=HEIGHT, title=title)
    )


def budget_over_time(frame: pl.DataFrame, cap: float) -> alt.Chart:
    """ρ spent in the rolling 12-month window ending at each period, against the cap (dashed rule)."""
    data = frame.sort("month")
    order = data["period"].to_list()
    base = alt.Chart(chart_data(data)).encode(
        x=alt.X("period:O", title="Period", sort=order, axis=alt.Axis(labelAngle=-45, labelOverlap=True))
    )
    bars = base.mark_bar(color="#0072B2", opacity=0.5).encode(
        y=alt.Y("rho:Q", title="ρ (zCDP)"),
        tooltip=["period:N", alt.Tooltip("rho:Q", format=".3f", title="ρ of this release"),
                 alt.Tooltip("window_rho:Q", format=".3f", title="ρ in 12-month window"),
                 alt.Tooltip("window_epsilon:Q", format=".2f", title="ε in window")],
    )
    line = base.mark_line(point=True, color="#D55E00").encode(y=alt.Y("window_rho:Q", title="ρ (zCDP)"))
    rule = alt.Chart(alt.Data(values=[{"cap": cap}])).mark_rule(strokeDash=[6, 4], color="#333333").encode(y="cap:Q")
    return (bars + line + rule).properties(
        height=HEIGHT, title="ρ per release (bars) and in the rolling 12-month window (line) vs cap (dashed)"
    )

