"""Streamlit dashboards for customer HR, the provider and privacy officers (``wellbeing dashboards``).

Map of modules:

- ``app.py`` – entrypoint/router: sign in → role → only that role's pages → ``st.navigation(...).run()``.
- ``auth.py`` – sign-in (streamlit-authenticator offline; OIDC via ``st.login`` as an option) and
  principal resolution over ``stores.accounts`` (the ``auth.yaml`` credentials file, bcrypt
  hashes) and ``stores.principal`` (``Principal(username, role, customer_id)``).
- ``data.py`` – the only data-access layer: read-only, short-lived reads of ``published.duckdb``
  with tenant isolation enforced on the principal; ``control.py`` – policy edits and release
  requests on ``control.duckdb`` through ``stores.control``.
- ``charts.py`` – pure Altair builders; ``ledger.py`` – rolling-window budget sums; ``ui.py`` –
  display formatting (clamping/rounding for display only) and shared panels.
- ``views/`` – thin page scripts; ``notice.py`` is the employee privacy notice (no sign-in).

Shared with the pipeline through ``stores/``: file names (``stores.paths``), the published
schema (``stores.published``), the control store, accounts and principals.

Privacy: this package never imports ``pipeline`` and never opens the raw store or its keys.
"""
