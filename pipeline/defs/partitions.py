"""Partition definitions shared by the pipeline's assets.

Both dimensions are dynamic: Dagster shows exactly the customers and months the raw store has,
and nothing is decided when the definitions are imported or loaded.

* ``customers`` – added by the ingest asset when a delivery names a new customer (and by the
  ``release_customers_sensor`` for stores filled by ``wellbeing ingest``).
* ``months`` – added by the ingest asset (and ``release_months_sensor``) from public and
  operational facts only (:func:`pipeline.releases.lifecycle.releasable_months`): from the first
  month of a headcount snapshot to the last month that had ended when an export was ingested.
  So partitions start with the first ingested month, not at a hard-coded date, and a backfill
  of "missing" partitions covers only months that could be released.

Why not a start date computed from the store when the definitions load: the code location
would have to open the encrypted raw store (key, lock) every time it loads, and the partition
set would change only on a reload.

Keys: build them with ``dg.MultiPartitionKey``; the string form orders dimension names
alphabetically (``"<customer>|<YYYY-MM-01>"``). Month keys are the first day of the month.
"""

import dagster as dg

CUSTOMERS = "customers"
MONTHS = "months"
customers_partitions = dg.DynamicPartitionsDefinition(name=CUSTOMERS)
months_partitions = dg.DynamicPartitionsDefinition(name=MONTHS)
customer_month_partitions = dg.MultiPartitionsDefinition({"customer": customers_partitions, "month": months_partitions})


def month_key(month: str) -> str:
    """The partition key of ``'YYYY-MM'``: ``'YYYY-MM-01'``."""
    return f"{month}-01"


def customer_month_key(customer: str, month: str) -> dg.MultiPartitionKey:
    """The release partition of (customer, ``'YYYY-MM'``)."""
    return dg.MultiPartitionKey({"customer": customer, "month": month_key(month)})
