"""The Dagster definitions of the code location, one kind per module (the layout ``dg`` scaffolds).

``pipeline/definitions.py`` loads this folder with :func:`dagster.load_from_defs_folder`.

- ``assets/`` – ``ingest.py`` (landing files → raw events → quarantine), ``releases.py``
  (the customer × month release), ``published.py`` (the published store);
- ``checks.py`` – the asset check specs and the verification behind them;
- ``jobs.py`` – ingest, release (schedule and requests), quarterly requests, retention;
- ``schedules.py`` – the monthly release and the monthly retention purge;
- ``sensors.py`` – landing folder, release requests (and their status), customer and month registry;
- ``resources.py`` – the raw store and the landing folder (resolved at run time);
- ``partitions.py`` – customers × months (both dynamic, registered from the raw store's public facts).
"""
