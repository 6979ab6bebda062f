"""File-level reading and refusal: format by suffix, header check against the contract.

Privacy reason (data minimisation): a file with any column outside the contract is
refused before a single row is read into the store. Refusal messages name the
file, columns and line numbers only: DuckDB's own error text (which quotes the
offending line) is never passed on.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from privacy.contract import (
    EVENT_COLUMN_NAMES,
    HEADCOUNT_COLUMN_NAMES,
    REQUIRED_EVENT_COLUMNS,
    REQUIRED_HEADCOUNT_COLUMNS,
    FileKind,
    classify_header,
)

FileFormat = Literal["csv", "parquet", "jsonl"]

SUFFIX_FORMATS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
CONTRACT_DOC = "docs/data-contract.md"
MAX_HEADER_BYTES = 128 * 1024  # a contract header is a few hundred bytes; longer is not a header


class FileRefused(Exception):
    """A whole file was refused; nothing from it was stored.

    ``str()`` is the actionable message: it names the file and the columns or the
    problem, never a cell value.
    """

    def __init__(self, path: Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path.name}: refused, nothing stored: {problem}")


@dataclass(frozen=True)
class Source:
    """A readable delivery: its kind, format, the table-function SQL and the source column types."""

    path: Path
    kind: FileKind
    format: FileFormat
    relation: str  # e.g. read_parquet('...'), usable in FROM
    column_types: dict[str, str]  # column name -> DuckDB type of the source


def sql_string(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def open_source(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    """Check ``path`` at file level and describe how to read it; raises :class:`FileRefused`."""
    path = Path(path)
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FileRefused(
            path, f"unsupported file type {path.suffix or '(none)'!r}: deliver .csv, .parquet, .jsonl or .ndjson"
        )
    if not path.is_file():
        raise FileRefused(path, "file not found or not a regular file")
    if path.stat().st_size == 0:
        raise FileRefused(path, "the file is empty (0 bytes)")
    if fmt == "csv":
        names = _csv_header(path)
        column_types = {n: "VARCHAR" for n in names}
        kind = _check_header(path, names)
        columns = "{" + ", ".join(f"{sql_string(n)}: 'VARCHAR'" for n in names) + "}"
        relation = (
            f"read_csv({sql_string(str(path))}, header=true, auto_detect=false, columns={columns}, "
            "delim=',', quote='\"', escape='\"', strict_mode=true, encoding='utf-8')"
        )
    elif fmt == "parquet":
        try:
            rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_string(str(path))})").fetchall()
        except duckdb.Error:
            raise FileRefused(
                path, "cannot be read as Parquet: the file is corrupt or truncated; re-export it"
            ) from None
        names = [r[0] for r in rows]
        kind = _check_header(path, names)
        column_types = {r[0]: str(r[1]) for r in rows}
        relation = f"read_parquet({sql_string(str(path))})"
    else:
        names = _jsonl_keys(con, path)
        kind = _check_header(path, names, positions=False)
        _jsonl_nested(con, path, names)
        column_types = {n: "VARCHAR" for n in names}
        columns = "{" + ", ".join(f"{sql_string(n)}: 'VARCHAR'" for n in names) + "}"
        relation = f"read_json({sql_string(str(path))}, format='newline_delimited', columns={columns})"
    return Source(path=path, kind=kind, format=fmt, relation=relation, column_types=column_types)


def peek_kind(con: duckdb.DuckDBPyConnection, path: Path) -> FileKind | None:
    """The kind of a delivery from a cheap look at its header (None when unsure); never raises.

    Used only to order a batch (headcount files first, so that events are checked against the
    structure delivered with them); :func:`open_source` makes the real check.
    """
    try:
        if not Path(path).is_file():  # a FIFO or device would block a read
            return None
        fmt = SUFFIX_FORMATS.get(Path(path).suffix.lower())
        if fmt == "csv":
            names = _csv_header(Path(path))
        elif fmt == "parquet":
            rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_string(str(path))})").fetchall()
            names = [r[0] for r in rows]
        elif fmt == "jsonl":
            with Path(path).open("rb") as fh:
                first = fh.readline(MAX_HEADER_BYTES)
            names = list(json.loads(first))
        else:
            return None
        return classify_header(names)
    except Exception:  # anything unreadable is refused later, with its reason
        return None


def refusal_for_read_error(path: Path, fmt: FileFormat, exc: duckdb.Error) -> FileRefused:
    """Translate a DuckDB read error into a refusal that quotes no file content."""
    text = str(exc)
    m = re.search(r"[Ll]ine:? (\d+)", text)
    where = f" (line {m.group(1)} of the file)" if m else ""
    if "unicode" in text.lower() or "utf-8" in text.lower() or "utf8" in text.lower():
        return FileRefused(path, f"the file is not valid UTF-8{where}: re-export it with UTF-8 encoding")
    if fmt == "csv" and "Expected Number of Columns" in text:
        return FileRefused(path, f"a row has a different number of fields than the header{where}: the CSV is malformed")
    if fmt == "parquet":
        return FileRefused(path, "cannot be read as Parquet: the file is corrupt or truncated; re-export it")
    label = {"csv": "CSV", "jsonl": "JSON Lines"}[fmt]
    return FileRefused(path, f"cannot be read as {label}{where}: the file is malformed or truncated")


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as fh:
        head = fh.read(MAX_HEADER_BYTES + 1)
    first, newline, _ = head.partition(b"\n")
    if not newline and len(head) > MAX_HEADER_BYTES:
        raise FileRefused(
            path, f"the first line is longer than {MAX_HEADER_BYTES // 1024} KiB, so it is not a contract header "
            "(line 1): deliver a CSV whose first line is the header row",
        )  # fmt: skip
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused(path, "the header is not valid UTF-8 (line 1): re-export it with UTF-8 encoding") from None
    if not line.strip():
        raise FileRefused(path, "the first line is empty: a CSV delivery starts with a header row")
    try:
        return next(csv.reader(io.StringIO(line.rstrip("\r"))))
    except (csv.Error, StopIteration):
        raise FileRefused(path, "the header (line 1) cannot be read as CSV: check its quotes and separators") from None


def _jsonl_keys(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """All keys used by any record (not a sample): an extra key anywhere refuses the file."""
    try:
        rows = con.execute(
            f"SELECT DISTINCT unnest(json_keys(json)) FROM read_ndjson_objects({sql_string(str(path))})"
        ).fetchall()
    except duckdb.Error as exc:
        raise refusal_for_read_error(path, "jsonl", exc) from None
    return sorted(r[0] for r in rows)


def _jsonl_nested(con: duckdb.DuckDBPyConnection, path: Path, names: list[str]) -> None:
    """Refuse a JSON Lines file where any contract key holds an object or an array.

    Privacy reason: a nested value (``{"name": ..., "manager": "...@corp.com"}``) would be
    stored as JSON text, outside the contract. The message names the line and key only.
    """
    checks = ", ".join(
        f"min(line) FILTER (WHERE json_type(json -> {sql_string(n)}) IN ('OBJECT', 'ARRAY'))" for n in names
    )
    try:
        con.execute("SET preserve_insertion_order = true")
        row = con.execute(
            f"SELECT {checks} FROM (SELECT row_number() OVER () AS line, json "
            f"FROM read_ndjson_objects({sql_string(str(path))}))"
        ).fetchone()
    except duckdb.Error as exc:
        raise refusal_for_read_error(path, "jsonl", exc) from None
    found = [(line, n) for line, n in zip(row or (), names) if line is not None]
    if found:
        line, name = min(found)
        raise FileRefused(
            path, f"line {line}, column {name}: a nested object or array; the contract allows only plain values "
            "(text, numbers, null): flatten or remove it and deliver again",
        )  # fmt: skip


def redact_column_name(name: str) -> str:
    """A column name safe to show: first character, a mask and the length; flags an e-mail address.

    Privacy reason: an offending header can itself be personal data (a person's e-mail
    address as a column name); the operator finds the column by its position instead.
    """
    shown = name[:1] if name[:1].isalnum() and name[:1].isascii() else "?"
    kind = ", looks like an e-mail address" if "@" in name else ""
    return f"{shown}*** ({len(name)} characters{kind})"


def _describe(names: list[str], offending: list[int], positions: bool) -> str:
    return "; ".join(
        f"column {i + 1}: {redact_column_name(names[i])}" if positions else f"key {redact_column_name(names[i])}"
        for i in offending
    )


def _check_header(path: Path, names: list[str], *, positions: bool = True) -> FileKind:
    """The file's kind from its header; refuses repeated, unknown or missing columns.

    ``positions``: the names are in file order (CSV, Parquet), so a refusal names the column
    number; JSON Lines keys have no position. An offending name is never shown in full.
    """
    dupes = [i for i, n in enumerate(names) if names.count(n) > 1]
    if dupes:
        allowed_names = set(EVENT_COLUMN_NAMES) | set(HEADCOUNT_COLUMN_NAMES)
        shown = "; ".join(
            f"column {i + 1}: {names[i] if names[i] in allowed_names else redact_column_name(names[i])}" for i in dupes
        )
        raise FileRefused(path, f"columns appear more than once ({shown}); keep one of each")
    kind = classify_header(names)
    if kind is None:
        raise FileRefused(
            path,
            "unrecognised header: an event export has an event_id column, a headcount file has headcount "
            f"and as_of columns (see {CONTRACT_DOC})",
        )
    allowed = EVENT_COLUMN_NAMES if kind == "events" else HEADCOUNT_COLUMN_NAMES
    required = REQUIRED_EVENT_COLUMNS if kind == "events" else REQUIRED_HEADCOUNT_COLUMNS
    extra = [i for i, n in enumerate(names) if n not in allowed]
    if extra:
        raise FileRefused(
            path,
            f"columns outside the data contract ({_describe(names, extra, positions)}). Remove these columns; "
            f"the contract forbids any column not listed for {kind} files (no names, contact details, "
            f"notes, free text or risk flags), see {CONTRACT_DOC}",
        )
    missing = [n for n in required if n not in names]
    if missing:
        raise FileRefused(path, f"missing required columns: {', '.join(missing)}; add them (see {CONTRACT_DOC})")
    return kind
