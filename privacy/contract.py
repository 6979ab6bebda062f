"""Provider data contract v1: the only columns, types and values the product accepts.

Privacy reason: data minimisation. Ingest refuses any file with a column outside
this contract (names, e-mails, notes, free text ...), so such data is never stored.
The same constants drive the synthetic generator, the release keys and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SERVICES: tuple[str, ...] = ("one_to_one", "group", "app", "webinar", "crisis_support")
TOPICS: tuple[str, ...] = (
    "stress",
    "burnout",
    "anxiety",
    "low_mood",
    "trauma_exposure",
    "relationships",
    "work_life",
    "other",
)

DURATION_RANGE = (0, 480)  # minutes, inclusive
WHO5_RAW_RANGE = (0, 25)  # WHO-5 raw score, inclusive; x4 gives the 0-100 percentage scale
SATISFACTION_RANGE = (1, 5)  # inclusive

ColumnType = Literal["string", "date", "month", "integer"]


@dataclass(frozen=True)
class Column:
    """One column of a contract file."""

    name: str
    type: ColumnType
    required: bool
    description: str
    allowed: tuple[str, ...] | None = None
    range: tuple[int, int] | None = None


EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "string", True, "Provider's id of the contact, unique per provider."),
    Column("client_ref", "string", True, "Provider's client id; pseudonymised on ingest, never stored."),
    Column("customer_id", "string", True, "The customer (employer) the client works for."),
    Column("site", "string", False, "Site of the client, as in the customer's headcount file."),
    Column("department", "string", True, "Department of the client, as in the headcount file."),
    Column("role", "string", False, "Role family of the client, as in the headcount file."),
    Column("service", "string", True, "Service used.", allowed=SERVICES),
    Column("occurred_on", "date", True, "ISO date (YYYY-MM-DD) of the contact."),
    Column("duration_min", "integer", False, "Length of the contact in minutes.", range=DURATION_RANGE),
    Column("who5_raw", "integer", False, "WHO-5 raw score at this contact.", range=WHO5_RAW_RANGE),
    Column("satisfaction", "integer", False, "Client satisfaction with the contact.", range=SATISFACTION_RANGE),
    Column("topic", "string", False, "Main topic of the contact.", allowed=TOPICS),
)

HEADCOUNT_COLUMNS: tuple[Column, ...] = (
    Column("customer_id", "string", True, "The customer."),
    Column("site", "string", True, "Site."),
    Column("department", "string", True, "Department."),
    Column("role", "string", False, "Role family (optional)."),
    Column("headcount", "integer", True, "Number of employees in this group.", range=(0, 10_000_000)),
    Column("as_of", "month", True, "Month the headcount refers to (YYYY-MM or YYYY-MM-DD)."),
)

EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS)
HEADCOUNT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in HEADCOUNT_COLUMNS)
REQUIRED_EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS if c.required)
REQUIRED_HEADCOUNT_COLUMNS: tuple[str, ...] = tuple(c.name for c in HEADCOUNT_COLUMNS if c.required)

FileKind = Literal["events", "headcount"]


# -- the input relations of the privacy library -------------------------------------------------
# ``privacy.structure`` and ``privacy.reduce`` read these two tables through the connection they
# are handed (the pipeline's encrypted raw store, or an in-memory database in tests). Their DDL is
# written here, once; ``pipeline/raw_store.py`` creates them with its own bookkeeping tables.
# ``employee`` is an integer surrogate of the keyed HMAC pseudonym (never the provider's id);
# ``delivery_id`` and ``ingested_at`` are the pipeline's bookkeeping (never read by privacy/).
INPUT_RELATIONS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    event_id      VARCHAR NOT NULL,
    customer_id   VARCHAR NOT NULL,
    employee      BIGINT NOT NULL,          -- pseudonyms.employee (no FOREIGN KEY: ingest writes both in one transaction)
    site          VARCHAR,
    department    VARCHAR NOT NULL,
    role          VARCHAR,
    service       VARCHAR NOT NULL,
    occurred_on   DATE NOT NULL,
    duration_min  SMALLINT,
    who5_raw      TINYINT,
    satisfaction  TINYINT,
    topic         VARCHAR,
    delivery_id   BIGINT NOT NULL,
    ingested_at   TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS headcount (
    customer_id   VARCHAR NOT NULL,
    site          VARCHAR NOT NULL,
    department    VARCHAR NOT NULL,
    role          VARCHAR,
    headcount     INTEGER NOT NULL,
    as_of         DATE NOT NULL,            -- first day of the month
    delivery_id   BIGINT NOT NULL
);
"""
INPUT_RELATIONS: tuple[str, ...] = ("events", "headcount")


def classify_header(columns: list[str] | tuple[str, ...]) -> FileKind | None:
    """Tell an event export from a headcount file by its header (None when it is neither)."""
    names = set(columns)
    if "event_id" in names:
        return "events"
    if "headcount" in names and "as_of" in names:
        return "headcount"
    return None
