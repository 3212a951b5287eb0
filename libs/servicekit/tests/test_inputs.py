"""`may_hold_refusals`: a bulk body it clears holds nothing `refusals` would find, so its rows
need not be walked one by one."""

from __future__ import annotations

import random

import orjson
import pytest

from servicekit.csvfiles import read_rows
from servicekit.inputs import _JSON_SUSPECT, may_hold_refusals, refusals


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


def test_it_finds_whatever_the_request_check_looks_for() -> None:
    rng = random.Random(7)
    alphabet = b'0123456789eE+-.NaInfity\\u" x\xed\xa0'
    for _ in range(20000):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        if _JSON_SUSPECT.search(body):
            assert may_hold_refusals(body), body
