"""Privacy library: from the raw tables to one differentially private customer-period release.

A pure library (polars, duckdb, pydantic, OpenDP, standard library): no Dagster, no Streamlit,
no file paths or keys of its own. Importing the package is cheap; OpenDP (≈ 2 s to import)
is loaded only by :mod:`privacy.measure`, when noise is actually drawn.

Privacy unit: one employee (the ``employee`` pseudonym) across all time. The model, with its
maths, is in ``docs/privacy-model.md``.

Modules, in the order a release uses them:

- :mod:`privacy.contract` – data contract v1: columns, services, topics, score ranges, and the
  input relations (``events``, ``headcount``) this library reads.
- :mod:`privacy.pseudonymise` – keyed HMAC pseudonyms (key always passed in).
- :mod:`privacy.policy` – :class:`~privacy.policy.ReleasePolicy`: one privacy dial (the annual ε
  at δ), cadence, shares, weights, width limits, public planning assumptions; validation,
  ``policy set`` parsing, risky-value warnings.
- :mod:`privacy.periods` – ``YYYY-MM`` / ``YYYY-Qn`` periods and the rolling 12-month window.
- :mod:`privacy.budget` – typed budgets (:class:`~privacy.budget.Rho`, ``PureEpsilon``),
  :func:`~privacy.budget.release_cost` (known before drawing), the one cap comparison,
  :class:`~privacy.budget.BudgetExceeded`.
- :mod:`privacy.structure` – public group keys from the headcount file; small groups rolled up
  into their own namespace.
- :mod:`privacy.plan` – the data-free plan: which figures and breakdowns are measured (only
  informative ones), their budgets and noise scales, the allocation table.
- :mod:`privacy.reduce` – DuckDB SQL: each employee's records → a few bounded rows (centred
  scores, ±1 outcome indicators).
- :mod:`privacy.measure` – the OpenDP measurement of a plan (the only module importing OpenDP).
- :mod:`privacy._opendp_compat` – workarounds for the pinned OpenDP 0.16 (private).
- :mod:`privacy.consistency` – least squares over the public hierarchy (post-processing).
- :mod:`privacy.intervals` – selection-aware and ratio intervals, projection, change intervals.
- :mod:`privacy.estimates` – the published figures with their intervals and gates.
- :mod:`privacy.suppression` – DuckDB SQL: what is shown (hidden / too uncertain), on noisy
  figures only.
- :mod:`privacy.release` – :func:`~privacy.release.draw_release`: the whole path, drawn once;
  :func:`~privacy.release.draw_releases`: many customer-periods, each customer's periods reduced
  in one pass, those with equal plans in one OpenDP measurement (identifier (customer, period,
  employee)), each at exactly its single cost.
- :mod:`privacy.accuracy` – data-free previews for the what-if tuner: allocation, expected
  interval widths, shares shown / hidden / too uncertain.
"""

from privacy.policy import DEFAULT_POLICY, PolicyError, ReleasePolicy

__all__ = ["DEFAULT_POLICY", "PolicyError", "ReleasePolicy"]
