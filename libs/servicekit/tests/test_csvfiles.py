"""CSV in and out: what a spreadsheet would run is escaped, and reads back as it was."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest

from servicekit.csvfiles import csv_lines, read_csv, read_rows
from servicekit.errors import ValidationFailed

FORMULAS = ["=1+1", "+SUM(A1)", "-2+3+cmd|' /C calc'!A0", "@SUM(1)", "\tx", "\rx", "'=kept"]


def test_every_formula_start_is_escaped_and_reads_back_exactly():
    rows: list[list[Any]] = [["name", "tags", "n"]]
    rows += [[v, [v, "ok"], Decimal("-5")] for v in FORMULAS]
    text = csv_lines(rows).decode()
    cells = list(csv.reader(io.StringIO(text, newline="")))
    for value, (name, tags, n) in zip(FORMULAS, cells[1:], strict=True):
        assert name == "'" + value and tags == "'" + value + ";ok"
        assert n == "-5"  # a number cannot carry a formula
    back = read_csv(text.encode(), max_rows=100)
    assert [r["name"] for r in back] == FORMULAS
    assert [r["tags"] for r in back] == [v + ";ok" for v in FORMULAS]


def test_a_bare_carriage_return_is_a_422_naming_the_line():
    with pytest.raises(ValidationFailed) as refused:
        read_csv(b"name,region\na,east\nb\rc,east\n", max_rows=100)
    assert "line 3:" in str(refused.value.detail)
    # Inside quotes it is data.
    assert read_csv(b'name,region\n"b\rc",east\n', max_rows=100) == [
        {"name": "b\rc", "region": "east"}
    ]


def test_bodies_that_cannot_be_read_are_422():
    for body, media in ((b"\xff\xfe", "text/csv"), (b"{", None), (b"[1]", None)):
        with pytest.raises(ValidationFailed):
            read_rows(body, media, max_rows=10)
    with pytest.raises(ValidationFailed):
        read_rows(b"x", "text/plain", max_rows=10)
