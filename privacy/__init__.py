"""Privacy library: from the raw tables to one differentially private customer-period release.

A pure library (polars, duckdb, pydantic, OpenDP, standard library): no Dagster, no Streamlit,
no file paths or keys of its own. Importing the package is cheap; OpenDP (≈ 2 s to import)
is loaded only by :mod:`privacy.measure`, when noise is actually drawn.

Privacy unit: one employee (the ``employee`` pseudonym) across all time. The model, with its
maths, is in ``docs/privacy-model.md``.

Modules, in the order a release uses them:

- :mod:`privacy.contract` – data contract v1: columns, services, topics, score ranges.
- :mod:`privacy.pseudonymise` – keyed HMAC pseudonyms (key always passed in).
- :mod:`privacy.policy` – :class:`~privacy.policy.ReleasePolicy` (k, z, ρ, cap, bounds,
  granularity, budget weights), validation, ``policy set`` parsing, ``implied_epsilon``.
- :mod:`privacy.periods` – ``YYYY-MM`` / ``YYYY-Qn`` periods and the rolling 12-month window.
- :mod:`privacy.budget` – :func:`~privacy.budget.release_cost` (known before drawing),
  :func:`~privacy.budget.check_budget` and :class:`~privacy.budget.BudgetExceeded`.
- :mod:`privacy.structure` – public group keys from the headcount file; small groups rolled up.
- :mod:`privacy.reduce` – DuckDB SQL: each employee's records → a few bounded rows.
- :mod:`privacy.measure` – the OpenDP measurement (the only module importing OpenDP).
- :mod:`privacy._opendp_compat` – workarounds for the pinned OpenDP 0.16 (private).
- :mod:`privacy.suppression` – DuckDB SQL k-thresholds on the noisy outputs only.
- :mod:`privacy.release` – :func:`~privacy.release.draw_release`: the whole path, drawn once;
  :func:`~privacy.release.draw_releases`: many customers of one period in one OpenDP
  measurement (identifier (customer, employee)), each at exactly its single-release cost.
- :mod:`privacy.accuracy` – data-free what-if: expected interval widths and suppression shares.
"""

from privacy.policy import DEFAULT_POLICY, PolicyError, ReleasePolicy

__all__ = ["DEFAULT_POLICY", "PolicyError", "ReleasePolicy"]
