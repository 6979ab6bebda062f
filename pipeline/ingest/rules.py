"""Row-level rules of the data contract, as one DuckDB set operation.

Every rule is a SQL condition. The staging SELECT (:attr:`StagePlan.select`) reads
the file and yields the typed contract columns plus a bit mask ``_problems`` per
row (0 = valid); it is never materialised: the loader reads it several times, each
a streaming, parallel read of the file. Quarantine rows are produced from the mask
and the rule list: (row number, column, reason).

Privacy reason: a reason names the column and the rule ("who5_raw out of range
0-25"), never the offending value, so the quarantine table holds no cell content.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.ingest.readers import FileRefused, Source, sql_string
from privacy.contract import EVENT_COLUMNS, HEADCOUNT_COLUMNS, Column

_INT_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}  # fmt: skip
_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}

# Storage type of each typed column in the raw tables.
_STORED_TYPES: dict[str, str] = {
    "duration_min": "SMALLINT",
    "who5_raw": "TINYINT",
    "satisfaction": "TINYINT",
    "headcount": "INTEGER",
}


@dataclass(frozen=True)
class Rule:
    """One row-level rule: the column it is about, the reason stored, its SQL condition (true = bad)."""

    bit: int
    column: str
    reason: str
    condition: str


@dataclass(frozen=True)
class UnknownStructure:
    """Values of an event delivery that the customer's headcount does not have.

    ``customers``: customer ids with no headcount at all; ``values``: column -> keys
    ``customer + "\\x1f" + value`` of site / department / role values that are not among that
    customer's headcount values. Found from the first pass (:mod:`pipeline.ingest.load`);
    usually empty, and then no rule is added.

    Privacy reason: data minimisation. A site, department or role that is not a group of the
    customer's published structure is not a contract value (it can be a name or a note), so
    its rows are quarantined and the value is never stored; the reason names the column only.
    """

    customers: tuple[str, ...] = ()
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    invalid: tuple[tuple[str, tuple[str, ...]], ...] = ()  # column -> distinct values breaking its character rule

    def __bool__(self) -> bool:
        return bool(self.customers) or any(keys for _, keys in self.values) or any(v for _, v in self.invalid)


# Event columns whose character rule is checked once per distinct value (from the first pass's
# per-person table) rather than on every row: a regular expression on 10M rows costs ~0.6 s a column.
VALUE_CHECKED_COLUMNS: frozenset[str] = frozenset({"client_ref", "customer_id", "site", "department", "role"})
# Longest literal list a rule may carry (``list_contains`` scans it for every row); beyond it the
# character rule runs per row, and a delivery with more unknown structure values is refused.
MAX_LISTED_VALUES = 1000


@dataclass(frozen=True)
class StagePlan:
    """The staging SELECT for one source and the rules encoded in its ``_problems`` mask.

    ``select`` is a relation usable in FROM (parenthesised): the typed final columns and
    ``_problems``, one row per data row of the file. :func:`numbered` adds ``_row``, the 1-based
    data row number (header excluded), counted in file order: run it only under
    ``SET preserve_insertion_order = true`` (DuckDB then streams ``row_number() OVER ()``
    over the reader in file order, also when it reads in parallel; a test guards it).
    """

    select: str
    rules: tuple[Rule, ...]
    columns: tuple[str, ...]
    part: str = ""  # SQL condition on the staged columns: the rows of one shard (empty: every row)
    file_row: bool = False  # the relation carries FILE_ROW, each row's number in the file (a staged delivery)

    @property
    def rows(self) -> str:
        """``select`` restricted to :attr:`part` (a relation usable in FROM, parenthesised by the caller)."""
        if self.file_row:
            where = f" WHERE {self.part}" if self.part else ""
            return f"SELECT * EXCLUDE ({FILE_ROW}) FROM ({self.select}){where}"
        return f"SELECT * FROM ({self.select}) WHERE {self.part}" if self.part else self.select


# A staged delivery (pipeline.ingest._Stage) is stored sorted by customer, so that each customer's
# part reads only its own row groups; this column keeps each row's number in the file.
FILE_ROW = "_wb_file_row"


def _category(duck_type: str) -> str:
    t = duck_type.upper()
    if t == "VARCHAR":
        return "string"
    if t in _INT_TYPES:
        return "int"
    if t in _FLOAT_TYPES or t.startswith("DECIMAL"):
        return "float"
    if t == "DATE":
        return "date"
    return "other"


_ACCEPTED_SOURCES = {
    "string": ({"string", "int"}, "text"),
    "integer": ({"string", "int", "float"}, "an integer"),
    "date": ({"string", "date"}, "a date or an ISO date string"),
    "month": ({"string", "date"}, "a date or a YYYY-MM string"),
}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def plan_stage(
    source: Source, unknown: UnknownStructure | None = None, part: str = "", *, file_row: bool = False
) -> StagePlan:
    """Build the staging SELECT (typed columns + problem mask) for ``source``.

    ``unknown`` adds the headcount rules of an event delivery: rows of a customer without a
    headcount, or with a site / department / role outside it, are bad rows. ``file_row``: the
    relation is a staged delivery carrying :data:`FILE_ROW` (its rows are not in file order).
    """
    columns = EVENT_COLUMNS if source.kind == "events" else HEADCOUNT_COLUMNS
    raw_exprs: list[str] = []
    typed_exprs: list[str] = []
    final_exprs: list[str] = []
    pending: list[tuple[str, str, str]] = []  # (column, reason, condition)

    invalid = dict(unknown.invalid) if unknown else {}
    for col in columns:
        r, t = _q("r_" + col.name), _q("t_" + col.name)
        src_type = source.column_types.get(col.name)
        if src_type is None:  # optional column absent from the file
            null_type = "DATE" if col.type in ("date", "month") else _STORED_TYPES.get(col.name, "VARCHAR")
            raw_exprs.append(f"NULL::VARCHAR AS {r}")
            typed_exprs.append(f"NULL::{null_type} AS {t}")
            final_exprs.append(f"{t} AS {_q(col.name)}")
            continue
        cat = _category(src_type)
        accepted, expected = _ACCEPTED_SOURCES[col.type]
        if cat not in accepted:
            raise FileRefused(source.path, f"column {col.name} has type {src_type}; expected {expected}")
        src = _q(col.name)
        raw_exprs.append(
            f"CAST({src} AS VARCHAR) AS {r}" if (col.type == "string" and cat == "int") else f"{src} AS {r}"
        )
        present = f"({r} IS NOT NULL AND {r} <> '')" if cat == "string" else f"({r} IS NOT NULL)"
        if col.required:
            # DuckDB's trim() strips spaces only, so a blank value is '' or starts with a space: it
            # sorts before '!' (byte order), one comparison that keeps trim() (which copies the
            # string) off the ~all rows that are not blank.
            empty = f"({r} IS NULL OR ({r} < '!' AND trim({r}) = ''))" if cat == "string" else f"({r} IS NULL)"
            pending.append((col.name, f"{col.name} is empty (required)", empty))
        by_value = source.kind == "events" and col.name in VALUE_CHECKED_COLUMNS
        typed, final = _typed(col, cat, r, t, present, pending, invalid.get(col.name, ()) if by_value else None)
        typed_exprs.append(f"{typed} AS {t}")
        final_exprs.append(f"{final} AS {_q(col.name)}")

    if unknown and source.kind == "events":
        pending.extend(_structure_rules(unknown, source))
    rules = tuple(Rule(1 << i, c, reason, cond) for i, (c, reason, cond) in enumerate(pending))
    mask = " + ".join(f"(CASE WHEN {rule.condition} THEN {rule.bit} ELSE 0 END)" for rule in rules) or "0"
    if file_row:
        raw_exprs.append(FILE_ROW)
        final_exprs.append(FILE_ROW)
    select = (
        f"SELECT {', '.join(final_exprs)}, CAST({mask} AS BIGINT) AS _problems FROM ("
        f"SELECT *, {', '.join(typed_exprs)} FROM ("
        f"SELECT {', '.join(raw_exprs)} FROM {source.relation}))"
    )
    return StagePlan(select=select, rules=rules, columns=tuple(c.name for c in columns), part=part, file_row=file_row)


def _structure_rules(unknown: UnknownStructure, source: Source) -> list[tuple[str, str, str]]:
    """(column, reason, condition) of the headcount rules; literal lists keep the SELECT a pure projection."""
    rules: list[tuple[str, str, str]] = []
    for column, keys in (("customer_id", unknown.customers), *unknown.values):
        if len(keys) > MAX_LISTED_VALUES:
            raise FileRefused(
                source.path, f"more than {MAX_LISTED_VALUES} distinct {column} values are not in the customers' "
                "headcount files: check that the headcount files were ingested first and that this is the right file",
            )  # fmt: skip
    if unknown.customers:
        listed = ", ".join(sql_string(c) for c in unknown.customers)
        rules.append(
            ("customer_id", "customer_id has no headcount file: ingest the customer's headcount first, then this file",
             f"list_contains([{listed}], {_q('r_customer_id')})")
        )  # fmt: skip
    for column, keys in unknown.values:
        if not keys or column not in source.column_types:
            continue
        listed = ", ".join(sql_string(k) for k in keys)
        rules.append(
            (column, f"{column} is not in the customer's headcount file (value not stored): use the headcount's names",
             f"list_contains([{listed}], {_q('r_customer_id')} || chr(31) || {_q('r_' + column)})")
        )  # fmt: skip
    return rules


def numbered(plan: StagePlan) -> str:
    """``plan.select`` plus ``_row``, the 1-based data row number in file order.

    Needs ``SET preserve_insertion_order = true``: ``row_number() OVER ()`` directly over the
    reader is then a streaming window fed in file order. A filter on the result stays above
    the window (DuckDB does not push filters through it), so ``_row`` counts every data row.
    The staging SELECT must stay pure projection for this: no joins below the window, and no
    ``x IN (long list)``, which DuckDB turns into a join that loses file order; hence
    ``list_contains``. Tests on multi-MB CSV and Parquet files guard it. A shard's ``part``
    filter is applied above the window too, so ``_row`` stays the row number in the whole file.
    A staged delivery (``plan.file_row``) carries that number from its staging instead, so a
    customer's filter reaches the scan of the (customer-sorted) staged table.
    """
    if plan.file_row:  # a staged delivery: the number was taken in file order when it was staged
        where = f" WHERE {plan.part}" if plan.part else ""
        return f"SELECT * EXCLUDE ({FILE_ROW}), {FILE_ROW} AS _row FROM ({plan.select}){where}"
    numbered = f"SELECT *, row_number() OVER () AS _row FROM ({plan.select})"
    return f"SELECT * FROM ({numbered}) WHERE {plan.part}" if plan.part else numbered


def _typed(
    col: Column,
    cat: str,
    r: str,
    t: str,
    present: str,
    pending: list[tuple[str, str, str]],
    invalid: tuple[str, ...] | None = None,
) -> tuple[str, str]:
    """Typed expression, final (stored) expression, and the column's rules appended to ``pending``.

    ``invalid`` (not None): the character rule is checked per distinct value by the loader, and
    these are the values that break it (usually none: then no condition at all).
    """
    name = col.name
    if col.type == "string":
        if col.allowed is not None:
            allowed = ", ".join(sql_string(v) for v in col.allowed)
            pending.append(
                (name, f"{name} is not one of the allowed values ({', '.join(col.allowed)})",
                 f"({present} AND NOT list_contains([{allowed}], {r}))")
            )  # fmt: skip
        elif col.pattern is not None:
            limit = col.max_chars or 64
            pending.append((name, f"{name} longer than {limit} characters", f"(length({r}) > {limit})"))
            reason = f"{name} has characters outside the contract ({col.rule})"
            if invalid is not None and len(invalid) <= MAX_LISTED_VALUES:
                if invalid:
                    pending.append((name, reason, f"list_contains([{', '.join(sql_string(v) for v in invalid)}], {r})"))
            else:
                pending.append(
                    (name, reason,
                     f"({present} AND length({r}) <= {limit} AND NOT ({r} < '!' AND trim({r}) = '') "
                     f"AND NOT regexp_full_match({r}, {sql_string(col.pattern)}))")
                )  # fmt: skip
        final = t if col.required else f"NULLIF({t}, '')"
        return r, final
    if col.type == "integer":
        if cat == "string":
            # Exact round trip: no '+', blanks, leading zeros, exponents or fractions; "12.0" is allowed
            # (float exports). TRY_CAST alone would round "3.5" to 4.
            typed = f"TRY_CAST({r} AS BIGINT)"
            pending.append(
                (name, f"{name} is not an integer",
                 f"({present} AND ({t} IS NULL OR (CAST({t} AS VARCHAR) <> {r} AND CAST({t} AS VARCHAR) || '.0' <> {r})))")
            )  # fmt: skip
        elif cat == "float":
            typed = f"(CASE WHEN {r} = trunc({r}) THEN TRY_CAST({r} AS BIGINT) END)"
            pending.append((name, f"{name} is not an integer", f"({present} AND {t} IS NULL)"))
        else:
            typed = f"TRY_CAST({r} AS BIGINT)"
        lo, hi = col.range or (-(2**31), 2**31 - 1)
        pending.append(
            (name, f"{name} out of range {lo}-{hi}", f"({present} AND ({t} IS NULL OR {t} < {lo} OR {t} > {hi}))"
             if cat == "int" else f"({t} < {lo} OR {t} > {hi})")
        )  # fmt: skip
        return typed, f"TRY_CAST({t} AS {_STORED_TYPES.get(name, 'INTEGER')})"
    if col.type == "date":
        if cat == "string":
            typed = f"TRY_CAST({r} AS DATE)"
            pending.append(
                (name, f"{name} is not an ISO date (YYYY-MM-DD)",
                 f"({present} AND ({t} IS NULL OR CAST({t} AS VARCHAR) <> {r}))")
            )  # fmt: skip
        else:
            typed = r
        pending.append((name, f"{name} is in the future", f"({t} > current_date + 1)"))
        return typed, t
    # month
    if cat == "string":
        typed = f"(CASE WHEN strlen({r}) = 7 THEN TRY_CAST({r} || '-01' AS DATE) ELSE TRY_CAST({r} AS DATE) END)"
        pending.append(
            (name, f"{name} is not a month (YYYY-MM or YYYY-MM-DD)",
             f"({present} AND ({t} IS NULL OR (strftime({t}, '%Y-%m') <> {r} AND CAST({t} AS VARCHAR) <> {r})))")
        )  # fmt: skip
    else:
        typed = r
    return typed, f"CAST(date_trunc('month', {t}) AS DATE)"


def quarantine_select(plan: StagePlan) -> str:
    """SELECT of (row_number, column_name, reason) for every broken rule of every bad row.

    A pass of its own over the file (the loader runs it only when the counting pass found
    bad rows), under ``preserve_insertion_order = true``: rows are numbered in file order by
    :func:`numbered` before the bad ones are kept, so ``row_number`` is the 1-based data row
    number (header excluded). Mask bits are joined to the rule list for the reasons.
    """
    values = ", ".join(f"({r.bit}, {sql_string(r.column)}, {sql_string(r.reason)})" for r in plan.rules)
    return (
        f"SELECT s._row AS row_number, q.column_name, q.reason FROM ({numbered(plan)}) s "
        f"JOIN (VALUES {values}) q(bit, column_name, reason) ON (s._problems & q.bit) <> 0 "
        "WHERE s._problems <> 0"
    )
