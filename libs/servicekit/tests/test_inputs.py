"""`may_hold_refusals`: a body it clears holds nothing `refusals` would find, so a parsed body is
not parsed a second time (`check_request`) and a bulk body's rows are not walked one by one."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import orjson
import pytest

from servicekit.csvfiles import read_rows
from servicekit.inputs import may_hold_refusals, refusals


@pytest.mark.parametrize(
    "body",
    [
        b'{"rows": [{"a": "x\\u0000y"}]}',
        b'{"rows": [{"a": "\\ud800"}]}',
        b'{"rows": [{"a": 18446744073709551615}]}',
        b'{"rows": [{"a": 1e999}]}',
        b'{"rows": [{"a": 1E+400}]}',
        b'{"rows": [{"a": NaN}]}',
        b'{"rows": [{"a": -Infinity}]}',
        b"a,b\nx,y\x00z\n",
    ],
)
def test_a_body_holding_a_refused_value_is_suspect(body: bytes) -> None:
    media = "text/csv" if body.startswith(b"a,b") else "application/json"
    assert list(refusals(read_rows(body, media, max_rows=10)))
    assert may_hold_refusals(body)


def test_an_ordinary_body_is_cleared_and_holds_nothing_refused() -> None:
    rows = [
        {"phone": f"+86 138{i:08d}", "n": i * 12345, "x": 1.5e10, "name": f"Café {i}"}
        for i in range(100)
    ]
    body = orjson.dumps({"rows": rows})
    assert not may_hold_refusals(body)
    assert not list(refusals(read_rows(body, "application/json", max_rows=100)))


# What a JSON body must contain before it can hold a refused value, as one regular expression:
# an escape, a raw surrogate's first byte with a surrogate's second, NaN or Infinity, and where
# a JSON value starts, 19 digits or more or a large exponent.
SUSPECT = re.compile(
    rb"\\u|\xed[\xa0-\xbf]|NaN|Infinity|(?:^|[\s:,\[\xbf])-?(?:[0-9]{19}|[0-9]+(?:[.][0-9]+)?[eE][+]?[0-9]{3})"
)


def test_it_finds_whatever_the_regular_expression_finds() -> None:
    rng = random.Random(7)
    alphabet = b'0123456789eE+-.NaInfity\\u" x\xed\xa0:,[a'
    found = 0
    for _ in range(40000):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        if SUSPECT.search(body):
            found += 1
            assert may_hold_refusals(body), body
    assert found > 1000  # the alphabet spells suspect bodies often enough to mean something


def _document(rng: random.Random) -> Any:
    """A random JSON value whose numbers and strings are made of digits and exponents."""

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    def number() -> str:
        text = rng.choice(["", "-"]) + rng.choice("123456789") + digits(rng.choice([0, 2, 18, 24]))
        if rng.random() < 0.3:
            text += "." + digits(rng.randrange(1, 4))
        if rng.random() < 0.4:
            text += rng.choice("eE") + rng.choice(["", "+", "-"]) + digits(rng.choice([1, 2, 3]))
        return text

    def string() -> str:
        return orjson.dumps(rng.choice(["x", "3e", "a-", " "]) + number()).decode()

    def value(depth: int) -> str:
        kind = rng.randrange(4 if depth < 3 else 2)
        if kind == 0:
            return number()
        if kind == 1:
            return string()
        if kind == 2:
            items = [value(depth + 1) for _ in range(rng.randrange(4))]
            return "[" + rng.choice([",", ", "]).join(items) + "]"
        pairs = [f'"k{n}":{rng.choice(["", " "])}{value(depth + 1)}' for n in range(3)]
        return "{" + ",".join(pairs) + "}"

    return value(0).encode()


def test_a_document_holding_a_huge_number_is_suspect_and_digits_in_its_text_are_not() -> None:
    rng = random.Random(11)
    refused = cleared = 0
    for _ in range(5000):
        body = _document(rng)
        found = list(refusals(json.loads(body)))
        if found:
            refused += 1
            assert may_hold_refusals(body), body
        elif not may_hold_refusals(body):
            cleared += 1
    assert refused > 200 and cleared > 1000


@pytest.mark.parametrize(
    "text",
    [
        "01937f4e-3e41-7c2a-9b1d-5e412a8c0d3f",  # a UUID: "3e41", "5e412"
        "ORD-2026120312345678901234",  # 22 digits of text
        "INV-2026E0001",
        "x,1e999",
    ],
)
def test_digits_in_a_string_are_text(text: str) -> None:
    body = orjson.dumps({"rows": [{"external_id": text, "n": 12, "x": 1.5e10}]})
    assert not list(refusals(json.loads(body)))
    if text != "x,1e999":  # a comma inside a string: a value could start there (suspect)
        assert not may_hold_refusals(body), body


def test_a_number_at_the_start_or_after_a_byte_order_mark_is_suspect() -> None:
    assert may_hold_refusals(b"1e999")
    assert may_hold_refusals(b"\xef\xbb\xbf1e999")
    assert json.loads(b"\xef\xbb\xbf1e999") == float("inf")


def test_escapes_other_than_u_are_cleared_and_a_u_escape_anywhere_is_suspect() -> None:
    # Backslashes without a \u escape (quotes, a path, a newline) hold nothing refused.
    body = orjson.dumps({"rows": [{"note": 'say "hi"\\n', "path": "C:\\temp\\x"}]})
    assert b"\\" in body and b"\\u" not in body
    assert not may_hold_refusals(body)
    # A \u escape after other backslashes, or at the very end, is still found.
    assert may_hold_refusals(b'{"a": "\\\\ \\" \\u0000"}')
    assert may_hold_refusals(b'"\\u')


def test_hangul_is_not_taken_for_a_raw_surrogate() -> None:
    # U+D55C (한) is ED 95 9C in UTF-8; a raw surrogate U+D800 would be ED A0 80.
    body = orjson.dumps({"rows": [{"company": "한국 무역"}]})
    assert b"\xed" in body
    assert not may_hold_refusals(body)
    assert may_hold_refusals(b'{"rows": [{"company": "\xed\xa0\x80"}]}')
