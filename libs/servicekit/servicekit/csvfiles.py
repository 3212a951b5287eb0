"""Bulk bodies in (JSON `{"rows": [...]}` or CSV) and CSV out, the same way in every app.

Reading refuses, as one 422 naming the line, what cannot be read row by row: a body that is
not UTF-8, or that the csv module cannot split (a bare carriage return outside quotes). What
is wrong inside a row (a NUL in a cell too) is that row's error, for the app's row validation
to say (`servicekit.inputs.row_refusal`).

Writing escapes every text cell a spreadsheet would run as a formula (OWASP's CSV injection
rule: a first character of `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`),
list cells included; reading takes that one quote off again, so an exported file imports back
as it was. Numbers (int, Decimal) are written as numbers: they cannot carry a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from servicekit.errors import PayloadTooLarge, ValidationFailed

CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv"})
JSON_MEDIA_TYPES = frozenset({"application/json", ""})
# Cells a spreadsheet reads as a formula (or as the start of one after a control character).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Where the cells of a row go that have no header above them: the row then fails validation.
EXTRA_CELLS = "_extra_cells"


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").partition(";")[0].strip().lower()


def read_rows(body: bytes, content_type: str | None, *, max_rows: int) -> list[Any]:
    """The rows of a bulk body: each JSON row as sent, each CSV row as a dict of its non-empty
    cells (`read_csv`). 422 for a body that cannot be read, 413 past `max_rows`."""
    media = media_type(content_type)
    if media in CSV_MEDIA_TYPES:
        return read_csv(body, max_rows=max_rows)
    if media in JSON_MEDIA_TYPES:
        return read_json_rows(body, max_rows=max_rows)
    raise ValidationFailed.field("Content-Type", "send application/json or text/csv")


def read_json_rows(body: bytes, *, max_rows: int) -> list[Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            # The standard parser takes what orjson refuses and JSON allows (an escaped lone
            # surrogate): then only the row holding it is refused, as its error.
            doc = json.loads(body)
        except ValueError:
            raise ValidationFailed.field("body", f"not JSON: {exc}") from None
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValidationFailed.field(
            "body", 'send {"rows": [...]} (or a CSV body with Content-Type text/csv)'
        )
    _check_size(len(rows), max_rows)
    return rows


def read_csv(body: bytes, *, max_rows: int) -> list[dict[str, Any]]:
    """Each row after the header as {header: cell} for its non-empty cells (an empty cell
    sets nothing), headers stripped, an exported formula escape taken off; cells beyond the
    header's under `EXTRA_CELLS`."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed.field("body", "the CSV must be UTF-8") from None
    # Lines end at LF (CRLF too): a carriage return inside quotes is data, a bare one outside
    # them the csv module refuses, and so do we (as a 422, never a 500).
    reader = csv.DictReader(io.StringIO(text), strict=True)
    rows: list[dict[str, Any]] = []
    try:
        if not reader.fieldnames:
            raise ValidationFailed.field("body", "the CSV has no header row")
        for record in reader:
            _check_size(len(rows) + 1, max_rows)
            row: dict[str, Any] = {}
            for key, value in record.items():
                if key is None:
                    row[EXTRA_CELLS] = value
                elif value is not None and value.strip():
                    row[key.strip()] = _unescaped(value)
            rows.append(row)
    except csv.Error as exc:
        raise ValidationFailed.field(
            # line_num counts the lines read before the one that failed.
            "body",
            f"line {reader.line_num + 1}: not readable as CSV ({exc})",
        ) from None
    return rows


def _check_size(n: int, max_rows: int) -> None:
    if n > max_rows:
        raise PayloadTooLarge(f"at most {max_rows} rows per call; split it", max_rows=max_rows)


def _escaped(value: str) -> bool:
    """Whether `value` is quotes then a formula start: what `safe_text` writes for a formula
    (or for a value that already looked like this, hence any number of quotes)."""
    rest = value.lstrip("'")
    return rest is not value and rest.startswith(FORMULA_STARTS)


def _unescaped(value: str) -> str:
    return value[1:] if _escaped(value) else value


def safe_text(value: str) -> str:
    """`value` as a spreadsheet shows it as text, never runs it as a formula. A value that
    already looks escaped is escaped once more, so reading it back gives it exactly."""
    if value.startswith(FORMULA_STARTS) or _escaped(value):
        return "'" + value
    return value


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def csv_cell(value: Any, separator: str = ";") -> Any:
    """One value as a CSV cell: a list joined by `separator` (one cell, escaped as a whole: a
    formula can only start a cell), times as ISO 8601, text escaped (`safe_text`)."""
    if isinstance(value, list | tuple):
        value = separator.join(str(_plain(v)) for v in value)
    value = _plain(value)
    return safe_text(value) if isinstance(value, str) else value


def csv_lines(rows: Iterable[Sequence[Any]], separator: str = ";") -> bytes:
    """CSV text of `rows`, every cell through `csv_cell` (a header row too: it is text)."""
    buf = io.StringIO()
    # CRLF (RFC 4180): a cell holding either CR or LF is then quoted (with "\n" alone the
    # writer would leave a bare CR unquoted, and the file would not read back).
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows([csv_cell(v, separator) for v in row] for row in rows)
    return buf.getvalue().encode()
