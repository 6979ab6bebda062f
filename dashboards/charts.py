"""Pure Altair chart builders (DataFrame in, chart out): one colour per metric, labelled axes,
95 % interval bands or error bars drawn from ``ci_low``/``ci_high``.

Charts carry their rows inline (:func:`dashboards.frames.chart_data`), never a pandas frame:
see :mod:`dashboards.frames` for the deadlock that rules pandas out of render paths.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from dashboards.frames import chart_data, period_label
from stores.labels import METRIC_LABELS, dimension_label

# One palette across all pages (colour-blind safe, Okabe-Ito).
METRIC_COLOURS: dict[str, str] = {
    "engaged_employees": "#0072B2",
    "uptake_rate": "#009E73",
    "contacts": "#E69F00",
    "who5_mean": "#CC79A7",
    "wellbeing_low_share": "#D55E00",
    "wellbeing_improved_share": "#009E73",
    "satisfaction_mean": "#56B4E9",
}
# Bounded figures are drawn on their whole scale, so a small wobble does not look like a trend.
METRIC_DOMAINS: dict[str, tuple[float, float]] = {
    "uptake_rate": (0.0, 1.0), "who5_mean": (0.0, 100.0), "wellbeing_low_share": (0.0, 1.0),
    "wellbeing_improved_share": (0.0, 1.0), "satisfaction_mean": (1.0, 5.0),
}
CATEGORY_PALETTE: list[str] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#7F7F7F", "#8C564B",
]
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
# Reference lines people read a figure against: WHO-5 below 50 is the screening cut-off for low wellbeing.
REFERENCE_LINES: dict[str, tuple[float, str]] = {"who5_mean": (50.0, "50: screening cut-off")}


def _axis_format(metric: str) -> str:
    return METRIC_FORMATS.get(metric, ",.2f")


def _y(metric: str, title: str) -> alt.Y:
    domain = METRIC_DOMAINS.get(metric)
    scale = alt.Scale(domain=list(domain), clamp=True) if domain and metric != "uptake_rate" else alt.Scale(zero=True)
    return alt.Y("value:Q", title=title, axis=alt.Axis(format=_axis_format(metric)), scale=scale)


def _labelled(frame: pl.DataFrame) -> pl.DataFrame:
    """``label``: the period as people read it (months and quarters alike)."""
    if "period" in frame.columns:
        return frame.with_columns(label=period_label(pl.col("period")))
    return frame.with_columns(label=pl.col("month").dt.strftime("%b %Y"))


def trend_with_band(frame: pl.DataFrame, metric: str, *, series: str | None = None) -> alt.Chart:
    """Line over ``month`` (a date column) of ``value`` with a shaded 95 % interval band.

    ``series`` names a column to draw one line per group (site/department comparison).
    """
    label = METRIC_LABELS.get(metric, metric)
    fmt = _axis_format(metric)
    data = _labelled(frame.sort("month"))
    order = data["label"].unique(maintain_order=True).to_list()
    base = alt.Chart(chart_data(data)).encode(
        x=alt.X("label:O", title="Period", sort=order, axis=alt.Axis(labelAngle=-45, labelOverlap=True)),
    )
    if series:
        legend = dimension_label(str(frame["dimension"][0])) if "dimension" in frame.columns and frame.height else None
        colour = alt.Color(f"{series}:N", title=legend or series.replace("_", " ").capitalize(),
                           scale=alt.Scale(range=CATEGORY_PALETTE))
        band = base.mark_area(opacity=0.15).encode(y="ci_low:Q", y2="ci_high:Q", color=colour)
        line = base.mark_line(point=True).encode(
            y=_y(metric, label),
            color=colour,
            tooltip=[alt.Tooltip("label:O", title="Period"), f"{series}:N",
                     alt.Tooltip("value:Q", format=fmt, title=label),
                     alt.Tooltip("ci_low:Q", format=fmt, title="95 % low"),
                     alt.Tooltip("ci_high:Q", format=fmt, title="95 % high")],
        )
    else:
        colour_value = METRIC_COLOURS.get(metric, "#0072B2")
        band = base.mark_area(opacity=0.2, color=colour_value).encode(y="ci_low:Q", y2="ci_high:Q")
        line = base.mark_line(point=alt.OverlayMarkDef(color=colour_value), color=colour_value).encode(
            y=_y(metric, label),
            tooltip=[alt.Tooltip("label:O", title="Period"),
                     alt.Tooltip("value:Q", format=fmt, title=label),
                     alt.Tooltip("ci_low:Q", format=fmt, title="95 % low"),
                     alt.Tooltip("ci_high:Q", format=fmt, title="95 % high")],
        )
    layers = band + line
    if metric in REFERENCE_LINES:
        value, text = REFERENCE_LINES[metric]
        ref = alt.Chart(alt.Data(values=[{"ref": value, "text": text}]))
        layers = layers + ref.mark_rule(strokeDash=[4, 4], color="#555555").encode(y="ref:Q") + ref.mark_text(
            align="left", dx=4, dy=-6, color="#555555").encode(y="ref:Q", text="text:N")
    return layers.properties(height=HEIGHT, title=f"{label} (band: 95 % interval)")


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


def stacked_share(
    frame: pl.DataFrame, *, x: str, colour: str, value: str = "value", title: str, x_title: str, colour_title: str,
    x_order: list[str] | None = None,
) -> alt.Chart:
    """Stacked bars of each ``colour`` group's share within each ``x`` (e.g. the service mix per customer).

    Shares are computed here (a group's value over the sum of its bar) and drawn on a fixed 0–100 %
    axis, so every bar is full height and comparable.
    """
    data = frame.with_columns(pl.col(value).clip(lower_bound=0.0)).with_columns(
        share=pl.col(value) / pl.col(value).sum().over(x)
    ).filter(pl.col("share").is_not_null() & pl.col("share").is_finite())
    return (
        alt.Chart(chart_data(data))
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=x_title, sort=x_order, axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("share:Q", stack="zero", title="Share of people counted", axis=alt.Axis(format="%"),
                    scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(f"{colour}:N", title=colour_title, scale=alt.Scale(range=CATEGORY_PALETTE)),
            order=alt.Order(f"{colour}:N"),
            tooltip=[alt.Tooltip(f"{x}:N", title=x_title), alt.Tooltip(f"{colour}:N", title=colour_title),
                     alt.Tooltip("share:Q", format=".0%", title="Share"),
                     alt.Tooltip(f"{value}:Q", format=",.0f", title="People (approx.)")],
        )
        .properties(height=HEIGHT, title=title)
    )


def multi_line(
    frame: pl.DataFrame, *, y: str, series: str, y_title: str, fmt: str, title: str, series_title: str
) -> alt.Chart:
    """Plain lines over the period per ``series`` (provider trends across customers)."""
    data = _labelled(frame.sort("month"))
    order = data["label"].unique(maintain_order=True).to_list()
    return (
        alt.Chart(chart_data(data))
        .mark_line(point=True)
        .encode(
            x=alt.X("label:O", title="Period", sort=order, axis=alt.Axis(labelAngle=-45, labelOverlap=True)),
            y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=fmt)),
            color=alt.Color(f"{series}:N", title=series_title, scale=alt.Scale(range=CATEGORY_PALETTE)),
            tooltip=[alt.Tooltip("label:O", title="Period"), alt.Tooltip(f"{series}:N", title=series_title),
                     alt.Tooltip(f"{y}:Q", format=fmt, title=y_title)],
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

