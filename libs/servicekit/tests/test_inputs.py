"""`may_hold_refusals`: a body it clears holds nothing `refusals` would find, so a parsed body is
not parsed a second time (`check_request`) and a bulk body's rows are not walked one by one."""

from __future__ import annotations

import random
import re

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


# What a JSON body must contain before it can hold a refused value, as a regular expression (the
# request check's own test before the substring searches replaced it): an escape, a raw
# surrogate's first byte with a surrogate's second, NaN or Infinity, 19 digits or more, a large
# exponent.
SUSPECT = re.compile(rb"\\u|\xed[\xa0-\xbf]|NaN|Infinity|[0-9]{19}|[eE][+]?[0-9]{3}")


def test_it_finds_whatever_the_regular_expression_finds() -> None:
    rng = random.Random(7)
    alphabet = b'0123456789eE+-.NaInfity\\u" x\xed\xa0'
    for _ in range(20000):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        if SUSPECT.search(body):
            assert may_hold_refusals(body), body


def test_hangul_is_not_taken_for_a_raw_surrogate() -> None:
    # U+D55C (한) is ED 95 9C in UTF-8; a raw surrogate U+D800 would be ED A0 80.
    body = orjson.dumps({"rows": [{"company": "한국 무역"}]})
    assert b"\xed" in body
    assert not may_hold_refusals(body)
    assert may_hold_refusals(b'{"rows": [{"company": "\xed\xa0\x80"}]}')
