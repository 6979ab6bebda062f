"""Partition definitions shared by the pipeline's assets."""

from __future__ import annotations

import dagster as dg

# One partition per customer, added by the ingest asset when a delivery names a new customer.
customers_partitions = dg.DynamicPartitionsDefinition(name="customers")

# Releases: one partition per customer and calendar month. end_offset=0 makes the last month
# partition the last *complete* month (only complete periods are released). Build keys with
# dg.MultiPartitionKey: the string form orders dimension names alphabetically ("<customer>|<YYYY-MM-01>").
month_partitions = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_offset=0)
customer_month_partitions = dg.MultiPartitionsDefinition({"customer": customers_partitions, "month": month_partitions})
