"""The release life cycle around the DP core (:mod:`privacy.release`).

- ``release_store`` – raw-store tables of stored draws and the authoritative budget ledger.
- ``lifecycle``     – ``run_release`` (serve stored / check budget / draw / store in one
  transaction / publish), ``due_periods``, ``run_all_due``.
- ``publish``       – rebuild ``published.duckdb`` beside the old one and swap it in.
- ``checks``        – re-verification of the published store (thresholds, ledger cap, identifiers).
- ``version``       – the code version recorded with every draw.

Privacy reason: noise is drawn once per (customer, period) and stored; every later run
serves the stored draw and spends nothing, so retries and backfills cannot average noise away.
"""
