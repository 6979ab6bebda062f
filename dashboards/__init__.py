"""Streamlit dashboards for customer HR, the provider and privacy officers (``wellbeing dashboards``).

Map of modules:

- ``app.py`` – entrypoint/router: sign in → role → only that role's pages → ``st.navigation(...).run()``.
- ``auth.py`` – sign-in (streamlit-authenticator offline; OIDC via ``st.login`` as an option) and
  principal resolution; ``accounts.py`` – the ``auth.yaml`` credentials file (bcrypt hashes).
- ``principal.py`` – ``Principal(username, role, customer_id)``.
- ``data.py`` – the only data-access layer: read-only, short-lived reads of ``published.duckdb``
  with tenant isolation enforced on the principal; ``control.py`` – policy edits and release
  requests on ``control.duckdb`` through ``privacy.policy_store``.
- ``charts.py`` – pure Altair builders; ``ledger.py`` – rolling-window budget sums; ``ui.py`` –
  display formatting (clamping/rounding for display only) and shared panels.
- ``views/`` – thin page scripts; ``notice.py`` is the employee privacy notice (no sign-in).

Privacy: this package never imports ``pipeline`` and never opens the raw store or its keys.
"""
