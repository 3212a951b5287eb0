"""The files of import and export: the kit reads bulk bodies and writes CSV (escaped for
spreadsheets, `servicekit.csvfiles`); what is the archive's own is the tags cell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from servicekit.csvfiles import CSV_MEDIA_TYPES, csv_lines, media_type, read_rows

MAX_ROWS = 10_000
# Tags travel in one CSV cell; the import splits them on the same separator.
TAG_SEPARATOR = ";"


def parse_rows(body: bytes, content_type: str | None) -> list[Any]:
    """The rows of an import body (JSON or CSV); a CSV row's tags cell split into a list."""
    rows = read_rows(body, content_type, max_rows=MAX_ROWS)
    if media_type(content_type) not in CSV_MEDIA_TYPES:
        return rows
    for row in rows:
        tags = row.get("tags") if isinstance(row, dict) else None
        if isinstance(tags, str):
            row["tags"] = [t.strip() for t in tags.split(TAG_SEPARATOR) if t.strip()]
    return rows


def export_lines(rows: Sequence[Sequence[Any]]) -> bytes:
    return csv_lines(rows, TAG_SEPARATOR)
