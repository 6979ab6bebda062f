"""The shared stores layer: what both ``pipeline/`` and ``dashboards/`` need, owned by neither.

Depends on duckdb, polars, pyyaml/bcrypt and :mod:`privacy` only: no Dagster, no Streamlit,
never ``pipeline`` or ``dashboards`` (``tests/test_architecture.py`` enforces it). It never
names the raw store, its file or its keys: those stay in ``pipeline/settings.py`` and
``pipeline/keys.py``, so a process that imports only this layer cannot find individual records.

- :mod:`stores.paths` – the files under ``$WELLBEING_HOME`` the dashboards may know
  (published store, control store, accounts, access audit).
- :mod:`stores.connect` – :func:`~stores.connect.connect_with_retry` and
  :class:`~stores.connect.StoreBusy`: the one lock-retry policy for every DuckDB file.
- :mod:`stores.published` – the published store's schema: one column list per table from
  which the DDL, the polars schemas, the column-list SQL and the identifier check are derived.
- :mod:`stores.control` – the control store (policy values and history, release requests)
  and its short-lived connections.
- :mod:`stores.principal`, :mod:`stores.accounts` – the signed-in principal (role, tenant)
  and the dashboard credentials file.
"""
