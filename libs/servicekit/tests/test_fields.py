"""`json_fits`: a JSON text it passes is one `json_checker` passes, so a bulk row of a body
`may_hold_refusals` cleared needs no walk of its JSON; what the checker refuses, it never
passes."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from servicekit.fields import MAX_JSON_INT, json_checker, json_fits


def _checker_passes(value: dict[str, Any], max_bytes: int, max_depth: int) -> bool:
    try:
        json_checker(max_bytes=max_bytes, max_depth=max_depth)(value)
    except ValueError:
        return False
    return True


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth < 8 else 5)
    if kind == 0:
        return rng.choice(["x", "[{", "a]b}", "1e5", "9" * 17, ""])
    if kind == 1:
        return rng.choice([0, 7, -12, MAX_JSON_INT, MAX_JSON_INT + 1, -MAX_JSON_INT - 1, 10**15])
    if kind == 2:
        return rng.choice([0.5, 1.5e10, 1.5e20, -2.5e-7, 9007199254740993.0])
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return "text " * rng.randrange(1, 4)
    if kind in (5, 6):
        return {f"k{i}": _value(rng, depth + 1) for i in range(rng.randrange(3))}
    return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]


def test_what_it_passes_the_checker_passes() -> None:
    rng = random.Random(15)
    passed = refused = 0
    for _ in range(5000):
        value = {"v": _value(rng, 1)}
        max_bytes = rng.choice([40, 8192])
        fits = json_fits(orjson.dumps(value), max_bytes=max_bytes, max_depth=5)
        checked = _checker_passes(value, max_bytes, 5)
        if fits:
            assert checked, value
            passed += 1
        refused += not checked
    assert passed > 500 and refused > 500  # both kinds were tried


@pytest.mark.parametrize(
    "value",
    [
        {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},
        {"a": [[[[[1]]]]]},
        {"n": MAX_JSON_INT + 1},
        {"n": -(MAX_JSON_INT + 1)},
        {"x": 1.5e20},
        {"t": "x" * 9000},
    ],
)
def test_it_never_passes_what_the_checker_refuses(value: dict[str, Any]) -> None:
    assert not _checker_passes(value, 8192, 5)
    assert not json_fits(orjson.dumps(value), max_bytes=8192, max_depth=5)


def test_an_ordinary_object_fits_without_a_walk() -> None:
    value = {"campaign": "spring-24", "form": "contact-us", "visits": 12, "score": 0.75}
    assert json_fits(orjson.dumps(value), max_bytes=8192, max_depth=5)
    assert json_fits(orjson.dumps({"a": {"b": {"c": {"d": 1}}}}), max_bytes=8192, max_depth=5)
