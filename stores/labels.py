"""The names people read: figures, breakdowns, services, topics, ledger columns, periods.

One place for both the dashboards and ``wellbeing export``, so a figure is called the same
everywhere. Display only: stored values and keys never change.

>>> group_label("service", "one_to_one")
'One-to-one therapy'
>>> period_label("2025-03"), period_label("2025-Q1")
('Mar 2025', 'Q1 2025')
"""

from __future__ import annotations

from privacy.periods import parse_period

__all__ = [
    "METRIC_LABELS", "DIMENSION_LABELS", "SERVICE_LABELS", "TOPIC_LABELS", "LEDGER_LABELS", "STATUS_LABELS",
    "ROLLUP_NOTE", "metric_label", "dimension_label", "group_label", "period_label", "is_rollup",
]  # fmt: skip

METRIC_LABELS: dict[str, str] = {
    "engaged_employees": "Employees who used the service",
    "uptake_rate": "Share of staff who used the service",
    "contacts": "Contacts",
    "who5_mean": "Average wellbeing (WHO-5, 0–100)",
    "wellbeing_low_share": "Low wellbeing (WHO-5 below 50)",
    "wellbeing_improved_share": "Improved by 10+ points",
    "satisfaction_mean": "Satisfaction (1–5)",
}
DIMENSION_LABELS: dict[str, str] = {
    "total": "Whole organisation", "department": "Department", "site": "Site", "role": "Role",
    "service": "Service", "topic": "Topic",
}  # fmt: skip
SERVICE_LABELS: dict[str, str] = {
    "one_to_one": "One-to-one therapy", "group": "Group sessions", "app": "Wellbeing app",
    "webinar": "Webinars", "crisis_support": "Crisis support",
}  # fmt: skip
TOPIC_LABELS: dict[str, str] = {
    "stress": "Stress", "burnout": "Burnout", "anxiety": "Anxiety", "low_mood": "Low mood",
    "trauma_exposure": "Exposure to distressing content", "relationships": "Relationships",
    "work_life": "Work–life balance", "other": "Other",
}  # fmt: skip
LEDGER_LABELS: dict[str, str] = {
    "created_at": "Drawn at", "period": "Period", "kind": "Kind", "release_id": "Release", "rho": "ρ (zCDP)",
    "epsilon": "ε", "delta": "δ", "policy_version": "Policy version", "requested_by": "Requested by",
    "code_version": "Code version",
}  # fmt: skip
STATUS_LABELS: dict[str, str] = {"published": "shown", "hidden": "hidden", "too_uncertain": "too uncertain"}
ROLLUP_NOTE = (
    "Groups in [brackets] combine teams, sites or roles that are too small to show on their own "
    "(for example “[Small teams, site North]”). They are fixed from the headcount, not from who used the service."
)


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


def dimension_label(dimension: str) -> str:
    return DIMENSION_LABELS.get(dimension, dimension.capitalize())


def is_rollup(group_value: str) -> bool:
    """Whether a group is a roll-up of small groups (its name is in the reserved ``[...]`` namespace)."""
    return group_value.startswith("[")


def group_label(dimension: str, group_value: str) -> str:
    """The readable name of a group: services and topics by their names; the total as the organisation."""
    if dimension == "service":
        return SERVICE_LABELS.get(group_value, group_value)
    if dimension == "topic":
        return TOPIC_LABELS.get(group_value, group_value)
    if dimension == "total":
        return "Whole organisation"
    return group_value


def period_label(period: str) -> str:
    """One format for periods everywhere: ``Mar 2025`` for a month, ``Q1 2025`` for a quarter."""
    p = parse_period(period)
    if p.granularity == "month":
        return f"{_MONTHS[p.first_month - 1]} {p.year}"
    return f"Q{(p.first_month - 1) // 3 + 1} {p.year}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
