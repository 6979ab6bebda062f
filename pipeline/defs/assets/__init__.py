"""Assets by subject: ingest (raw events), releases (customer × month), the published store."""
