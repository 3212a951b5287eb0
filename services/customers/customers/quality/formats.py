"""The files of import and export: JSON and CSV bodies in, CSV out. No rules, no database."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from servicekit.errors import BadRequest, PayloadTooLarge, ValidationFailed

MAX_ROWS = 10_000
# Tags travel in one CSV cell; the import splits them on the same separator.
TAG_SEPARATOR = ";"


def parse_json(body: bytes) -> list[Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValidationFailed.field(
            "body", 'send {"rows": [...]} (or a CSV body with Content-Type text/csv)'
        )
    _check_size(len(rows))
    return rows


def parse_csv(body: bytes) -> list[Any]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the CSV must be UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        # Read, but not what an import is: a 422, as for any body that does not validate.
        raise ValidationFailed.field("body", "the CSV has no header row")
    rows: list[Any] = []
    for record in reader:
        if len(rows) >= MAX_ROWS:
            _check_size(MAX_ROWS + 1)
        row: dict[str, Any] = {}
        for key, value in record.items():
            if key is None:
                # More cells than headers: keep them visible so the row fails validation.
                row["_extra_cells"] = value
                continue
            key = key.strip()
            if value is None or value.strip() == "":
                continue  # an empty cell sets nothing (it never clears a field)
            if key == "tags":
                row[key] = [t.strip() for t in value.split(TAG_SEPARATOR) if t.strip()]
            else:
                row[key] = value
        rows.append(row)
    return rows


def _check_size(n: int) -> None:
    if n > MAX_ROWS:
        raise PayloadTooLarge(
            f"at most {MAX_ROWS} rows per call; split the file", max_rows=MAX_ROWS
        )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return TAG_SEPARATOR.join(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str) and _formula_like(value):
        # A spreadsheet would run it as a formula (CSV injection); a leading quote keeps it text.
        return "'" + value
    return value


def _formula_like(value: str) -> bool:
    if not value:
        return False
    if value[0] in "=@\t\r":
        return True
    # "+86 138..." and "-5" are data; "+SUM(...)" or "-cmd|..." are not.
    return value[0] in "+-" and len(value) > 1 and not (value[1].isdigit() or value[1] in " (.")


def csv_lines(header: Sequence[str] | None, rows: Sequence[Sequence[Any]] = ()) -> bytes:
    """CSV text: the header line when given, else the rows (cells made safe for spreadsheets)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    else:
        writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue().encode()
