"""Chart builders: DataFrame in, Vega-Lite spec (a plain dict) out; one colour per metric, labelled
axes, 95 % interval bands or error bars drawn from ``ci_low``/``ci_high``. Pages draw them with
``st.vega_lite_chart(spec)``.

Specs are written as dicts, not through Altair: building and validating Altair objects cost
40–87 % of a chart page's CPU under load (benchmarks/bench_dashboards_load.py), and the spec is
the same. Charts carry their rows inline (:func:`dashboards.frames.chart_data`), never a pandas
frame: see :mod:`dashboards.frames` for the deadlock that rules pandas out of render paths.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from dashboards.frames import chart_data, period_label
from stores.labels import METRIC_LABELS, dimension_label

Spec = dict[str, Any]

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
    "uptake_rate": (0.0, 1.0),
    "who5_mean": (0.0, 100.0),
    "wellbeing_low_share": (0.0, 1.0),
    "wellbeing_improved_share": (0.0, 1.0),
    "satisfaction_mean": (1.0, 5.0),
}
CATEGORY_PALETTE: list[str] = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#7F7F7F",
    "#8C564B",
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


def _y(metric: str, title: str) -> Spec:
    domain = METRIC_DOMAINS.get(metric)
    scale = {"domain": list(domain), "clamp": True} if domain and metric != "uptake_rate" else {"zero": True}
    return {
        "field": "value",
        "type": "quantitative",
        "title": title,
        "axis": {"format": _axis_format(metric)},
        "scale": scale,
    }


def _labelled(frame: pl.DataFrame) -> pl.DataFrame:
    """``label``: the period as people read it (months and quarters alike)."""
    if "period" in frame.columns:
        return frame.with_columns(label=period_label(pl.col("period")))
    return frame.with_columns(label=pl.col("month").dt.strftime("%b %Y"))


def _tip(field: str, kind: str, title: str, fmt: str | None = None) -> Spec:
    tip: Spec = {"field": field, "type": kind, "title": title}
    if fmt:
        tip["format"] = fmt
    return tip


def _x_period(order: list[str]) -> Spec:
    return {
        "field": "label",
        "type": "ordinal",
        "title": "Period",
        "sort": order,
        "axis": {"labelAngle": -45, "labelOverlap": True},
    }


def _spec(title: str, layers: list[Spec], *, data: Any = None, height: Any = HEIGHT) -> Spec:
    spec: Spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title, "height": height}
    if data is not None:
        spec["data"] = data
    spec["layer"] = layers
    return spec


def trend_with_band(frame: pl.DataFrame, metric: str, *, series: str | None = None) -> Spec:
    """Line over the period of ``value`` with a shaded 95 % interval band.

    ``series`` names a column to draw one line per group (site/department comparison).
    """
    label = METRIC_LABELS.get(metric, metric)
    fmt = _axis_format(metric)
    data = _labelled(frame.sort("month"))
    order = data["label"].unique(maintain_order=True).to_list()
    x = _x_period(order)
    tooltip = [
        _tip("label", "ordinal", "Period"),
        _tip("value", "quantitative", label, fmt),
        _tip("ci_low", "quantitative", "95 % low", fmt),
        _tip("ci_high", "quantitative", "95 % high", fmt),
    ]
    if series:
        legend = dimension_label(str(frame["dimension"][0])) if "dimension" in frame.columns and frame.height else None
        legend_title = legend or series.replace("_", " ").capitalize()
        colour = {
            "field": series,
            "type": "nominal",
            "title": legend_title,
            "scale": {"range": CATEGORY_PALETTE},
        }
        band = {
            "mark": {"type": "area", "opacity": 0.15},
            "encoding": {
                "x": x,
                "y": {"field": "ci_low", "type": "quantitative"},
                "y2": {"field": "ci_high"},
                "color": colour,
            },
        }
        line = {
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": x,
                "y": _y(metric, label),
                "color": colour,
                "tooltip": [*tooltip[:1], _tip(series, "nominal", legend_title), *tooltip[1:]],
            },
        }
    else:
        colour_value = METRIC_COLOURS.get(metric, "#0072B2")
        band = {
            "mark": {"type": "area", "opacity": 0.2, "color": colour_value},
            "encoding": {"x": x, "y": {"field": "ci_low", "type": "quantitative"}, "y2": {"field": "ci_high"}},
        }
        line = {
            "mark": {"type": "line", "color": colour_value, "point": {"color": colour_value}},
            "encoding": {"x": x, "y": _y(metric, label), "tooltip": tooltip},
        }
    layers: list[Spec] = [{**band, "data": chart_data(data)}, {**line, "data": chart_data(data)}]
    if metric in REFERENCE_LINES:
        value, text = REFERENCE_LINES[metric]
        ref = {"values": [{"ref": value, "text": text}]}
        layers.append(
            {
                "data": ref,
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#555555"},
                "encoding": {"y": {"field": "ref", "type": "quantitative"}},
            }
        )
        layers.append(
            {
                "data": ref,
                "mark": {"type": "text", "align": "left", "dx": 4, "dy": -6, "color": "#555555"},
                "encoding": {
                    "y": {"field": "ref", "type": "quantitative"},
                    "text": {"field": "text", "type": "nominal"},
                },
            }
        )
    return _spec(f"{label} (band: 95 % interval)", layers)


def bars_with_error(frame: pl.DataFrame, metric: str, *, category: str = "group_value") -> Spec:
    """Horizontal bars of ``value`` per ``category`` with 95 % error bars (suppressed rows excluded)."""
    label = METRIC_LABELS.get(metric, metric)
    fmt = _axis_format(metric)
    data = frame.filter(pl.col("value").is_not_null()).sort("value", descending=True)
    order = data[category].to_list()
    y = {"field": category, "type": "nominal", "title": None, "sort": order}
    bars = {
        "mark": {"type": "bar", "color": METRIC_COLOURS.get(metric, "#0072B2"), "opacity": 0.85},
        "encoding": {
            "y": y,
            "x": {
                "field": "value",
                "type": "quantitative",
                "title": f"{label} (line: 95 % interval)",
                "axis": {"format": fmt},
            },
            "tooltip": [
                _tip(category, "nominal", "Group"),
                _tip("value", "quantitative", label, fmt),
                _tip("ci_low", "quantitative", "95 % low", fmt),
                _tip("ci_high", "quantitative", "95 % high", fmt),
            ],
        },
    }
    errors = {
        "mark": {"type": "rule", "color": "#333333", "strokeWidth": 2},
        "encoding": {"y": y, "x": {"field": "ci_low", "type": "quantitative"}, "x2": {"field": "ci_high"}},
    }
    # a step height: "fit" autosizing does not apply to a discrete axis
    return _spec(label, [bars, errors], data=chart_data(data), height={"step": 36})


def stacked_share(
    frame: pl.DataFrame,
    *,
    x: str,
    colour: str,
    value: str = "value",
    title: str,
    x_title: str,
    colour_title: str,
    x_order: list[str] | None = None,
) -> Spec:
    """Stacked bars of each ``colour`` group's share within each ``x`` (e.g. the service mix per customer).

    Shares are computed here (a group's value over the sum of its bar) and drawn on a fixed 0–100 %
    axis, so every bar is full height and comparable.
    """
    data = (
        frame.with_columns(pl.col(value).clip(lower_bound=0.0))
        .with_columns(share=pl.col(value) / pl.col(value).sum().over(x))
        .filter(pl.col("share").is_not_null() & pl.col("share").is_finite())
    )
    bars = {
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": x, "type": "nominal", "title": x_title, "sort": x_order, "axis": {"labelAngle": -45}},
            "y": {
                "field": "share",
                "type": "quantitative",
                "stack": "zero",
                "title": "Share of people counted",
                "axis": {"format": "%"},
                "scale": {"domain": [0, 1]},
            },
            "color": {"field": colour, "type": "nominal", "title": colour_title, "scale": {"range": CATEGORY_PALETTE}},
            "order": {"field": colour, "type": "nominal"},
            "tooltip": [
                _tip(x, "nominal", x_title),
                _tip(colour, "nominal", colour_title),
                _tip("share", "quantitative", "Share", ".0%"),
                _tip(value, "quantitative", "People (approx.)", ",.0f"),
            ],
        },
    }
    return _spec(title, [bars], data=chart_data(data))


def multi_line(
    frame: pl.DataFrame, *, y: str, series: str, y_title: str, fmt: str, title: str, series_title: str
) -> Spec:
    """Plain lines over the period per ``series`` (provider trends across customers)."""
    data = _labelled(frame.sort("month"))
    order = data["label"].unique(maintain_order=True).to_list()
    line = {
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": _x_period(order),
            "y": {"field": y, "type": "quantitative", "title": y_title, "axis": {"format": fmt}},
            "color": {"field": series, "type": "nominal", "title": series_title, "scale": {"range": CATEGORY_PALETTE}},
            "tooltip": [
                _tip("label", "ordinal", "Period"),
                _tip(series, "nominal", series_title),
                _tip(y, "quantitative", y_title, fmt),
            ],
        },
    }
    return _spec(title, [line], data=chart_data(data))


def budget_over_time(frame: pl.DataFrame, cap: float) -> Spec:
    """ρ spent in the rolling 12-month window ending at each period, against the cap (dashed rule)."""
    data = frame.sort("month")
    order = data["period"].to_list()
    x = {
        "field": "period",
        "type": "ordinal",
        "title": "Period",
        "sort": order,
        "axis": {"labelAngle": -45, "labelOverlap": True},
    }
    rows = chart_data(data)
    bars = {
        "data": rows,
        "mark": {"type": "bar", "color": "#0072B2", "opacity": 0.5},
        "encoding": {
            "x": x,
            "y": {"field": "rho", "type": "quantitative", "title": "ρ (zCDP)"},
            "tooltip": [
                _tip("period", "nominal", "Period"),
                _tip("rho", "quantitative", "ρ of this release", ".3f"),
                _tip("window_rho", "quantitative", "ρ in 12-month window", ".3f"),
                _tip("window_epsilon", "quantitative", "ε in window", ".2f"),
            ],
        },
    }
    line = {
        "data": rows,
        "mark": {"type": "line", "point": True, "color": "#D55E00"},
        "encoding": {"x": x, "y": {"field": "window_rho", "type": "quantitative", "title": "ρ (zCDP)"}},
    }
    rule = {
        "data": {"values": [{"cap": cap}]},
        "mark": {"type": "rule", "strokeDash": [6, 4], "color": "#333333"},
        "encoding": {"y": {"field": "cap", "type": "quantitative"}},
    }
    return _spec("ρ per release (bars) and in the rolling 12-month window (line) vs cap (dashed)", [bars, line, rule])
