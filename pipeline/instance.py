"""A persistent Dagster instance under ``$WELLBEING_HOME/dagster``, and its concurrency.

Dynamic partitions (one per customer) live in the instance, so the demo and
``dagster dev`` must share a persistent ``DAGSTER_HOME``.

Concurrency (Dagster's own machinery, see docs/deployment.md):

* **Per customer, across runs** – every run of a customer-month partition carries the run tag
  ``dagster/partition/customer`` (Dagster adds one tag per dimension of a multi-partition key).
  The run queue (``QueuedRunCoordinator``, Dagster's default, enforced by the daemon) admits at
  most **one in-progress run per customer** (``applyLimitPerUniqueValue``), while different
  customers' runs — each a process of its own — go side by side, up to ``max_concurrent_runs``.
  So a backfill of many customers uses every core and two releases of one customer never write
  its store at the same time.
* **Pools, across runs, per step** – ``published_store`` (the one published file, rebuilt and
  swapped in) runs in the ``published_store`` pool; ingest, retention and the quarterly op write
  the raw store in the ``duckdb_writer`` pool. Pools without an explicit limit get
  ``default_limit: 1``. ``granularity: op``: a run is launched and only the pooled step waits.
* **Within a run** – the code location's executor is in-process: a run holds one customer-month
  and its two steps depend on each other, so there is nothing to run side by side inside it.

Each customer's records are in its own shard, so two customers' release steps open different
files; they share only short catalog reads and writes (retried on a lock with back-off).

:data:`DAGSTER_YAML` is the demo's instance (SQLite storage under ``DAGSTER_HOME``);
``deploy/dagster.yaml`` is the production one (Postgres) with the same ``concurrency`` block.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.settings import Settings

# Dagster's run tag for the ``customer`` dimension of the customer × month partitions.
CUSTOMER_RUN_TAG = "dagster/partition/customer"
# The pool of the published-store rebuild (one file, swapped in; one rebuild at a time).
PUBLISHED_POOL = "published_store"
# Runs in progress at once (all customers together): one per core; each run is one process.
DEFAULT_MAX_CONCURRENT_RUNS = max(2, os.cpu_count() or 2)

_HEADER = "# Written by the wellbeing pipeline"


def concurrency_yaml(max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS, indent: str = "") -> str:
    """The ``concurrency`` block of a ``dagster.yaml``: one run per customer at a time, pools of 1."""
    lines = [
        "concurrency:",
        "  pools:",
        "    default_limit: 1  # published_store, duckdb_writer: one step at a time",
        "    granularity: op",
        "  runs:",
        f"    max_concurrent_runs: {max_concurrent_runs}",
        "    tag_concurrency_limits:",
        "      # one in-progress run per customer (its store has one writer); customers side by side",
        f"      - key: {CUSTOMER_RUN_TAG}",
        "        value:",
        "          applyLimitPerUniqueValue: true",
        "        limit: 1",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


# Dagster's default run coordinator, spelled out to launch the admitted runs side by side
# (threads): a backfill's first run of each customer starts together.
RUN_COORDINATOR_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 2
    dequeue_use_threads: true
    dequeue_num_workers: 4
"""

DAGSTER_YAML = (
    f"{_HEADER}. One run per customer at a time (customers side by side);\n"
    "# the published store is rebuilt one step at a time (pool). See docs/deployment.md.\n"
    + RUN_COORDINATOR_YAML
    + concurrency_yaml()
    + "telemetry:\n  enabled: false\n"
)


def ensure_dagster_home(settings: Settings) -> Path:
    """Create ``$WELLBEING_HOME/dagster`` with its ``dagster.yaml`` and point ``DAGSTER_HOME`` at it.

    A ``dagster.yaml`` written by an older version of the pipeline (its first line says so) is
    replaced by the current one; a file written by anyone else is left alone.
    """
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or (
        config.read_text(encoding="utf-8").startswith(_HEADER) and config.read_text(encoding="utf-8") != DAGSTER_YAML
    ):
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
