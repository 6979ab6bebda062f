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

# Character and length rules of the free-form string columns (RE2 syntax, whole value).
# Privacy reason: data minimisation. An identifier or a group label is a short code or name;
# anything else (a sentence, an e-mail address, a note) is not a contract value and is
# quarantined without being stored. Event labels must also be in the customer's headcount.
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:/#-]*"
ID_MAX_CHARS = 64
LABEL_PATTERN = r"[\p{L}\p{N}][\p{L}\p{N} &'()+,./_-]*"
LABEL_MAX_CHARS = 80
ID_RULE = "letters, digits and . _ : / # - only, starting with a letter or digit"
LABEL_RULE = "letters, digits, spaces and & ' ( ) + , . / _ - only, starting with a letter or digit"


@dataclass(frozen=True)
class Column:
    """One column of a contract file."""

    name: str
    type: ColumnType
    required: bool
    description: str
    allowed: tuple[str, ...] | None = None
    range: tuple[int, int] | None = None
    pattern: str | None = None  # free-form strings: the whole value must match (RE2)
    max_chars: int | None = None
    rule: str = ""  # the pattern in words, for the quarantine reason
    in_headcount: bool = False  # events: the value must be one of the customer's headcount values


_ID: dict = {"pattern": ID_PATTERN, "max_chars": ID_MAX_CHARS, "rule": ID_RULE}
_LABEL: dict = {"pattern": LABEL_PATTERN, "max_chars": LABEL_MAX_CHARS, "rule": LABEL_RULE}
_HC_LABEL: dict = {**_LABEL, "in_headcount": True}

EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "string", True, "Provider's id of the contact, unique per provider.", **_ID),
    Column("client_ref", "string", True, "Provider's client id; pseudonymised on ingest, never stored.", **_ID),
    Column("customer_id", "string", True, "The customer (employer) the client works for.", **_ID),
    Column("site", "string", False, "Site of the client, as in the customer's headcount file.", **_HC_LABEL),
    Column("department", "string", True, "Department of the client, as in the headcount file.", **_HC_LABEL),
    Column("role", "string", False, "Role family of the client, as in the headcount file.", **_HC_LABEL),
    Column("service", "string", True, "Service used.", allowed=SERVICES),
    Column("occurred_on", "date", True, "ISO date (YYYY-MM-DD) of the contact."),
    Column("duration_min", "integer", False, "Length of the contact in minutes.", range=DURATION_RANGE),
    Column("who5_raw", "integer", False, "WHO-5 raw score at this contact.", range=WHO5_RAW_RANGE),
    Column("satisfaction", "integer", False, "Client satisfaction with the contact.", range=SATISFACTION_RANGE),
    Column("topic", "string", False, "Main topic of the contact.", allowed=TOPICS),
)

HEADCOUNT_COLUMNS: tuple[Column, ...] = (
    Column("customer_id", "string", True, "The customer.", **_ID),
    Column("site", "string", True, "Site.", **_LABEL),
    Column("department", "string", True, "Department.", **_LABEL),
    Column("role", "string", False, "Role family (optional).", **_LABEL),
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
