"""What no request may carry, refused at its edge, and the field types every app's contracts use.

PostgreSQL cannot hold some values a request can spell: U+0000 in text (nor in JSONB), an
unpaired surrogate (not UTF-8), an integer beyond 64 bits, a non-finite number. Left alone they
reach the driver or the database and fail there, as a 500 naming nothing. `check_request` (run
by `KitRoute` for every route of every app) refuses them in the path, the query and the body
FastAPI parses, as a 422 naming each field, before the endpoint and its dependencies run.
An endpoint that reads its body itself (a bulk import) checks what it parsed with `refusals`,
so that one bad row is that row's error, not the whole call's.

`Date` and `Timestamp` take only ISO 8601 text: pydantic would read a number as seconds since
1970, so `{"order_date": 0}` was stored as 1970-01-01.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from servicekit.errors import ValidationFailed

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# At most this many refusals are listed in one answer.
MAX_LISTED = 20
_SURROGATE = re.compile("[\ud800-\udfff]")
_FORM = "application/x-www-form-urlencoded"
# What a JSON body must contain before it can hold a refused value (`may_hold_refusals`): an
# escape (U+0000 and surrogates are escaped; a raw surrogate is encoded as ED A0-BF), NaN or
# Infinity, a raw NUL, an integer of 19 digits or more, or a large exponent. A body without
# any of these is not parsed twice. Plain substrings first: in `_FOLD`ed text every digit is 0
# and E is e, so a run of digits or an exponent is one substring. ED alone starts Hangul too:
# the byte after it tells. Digits found so count only where a JSON value can start
# (`_HUGE_NUMBER`): inside a string (a UUID's "3e41", an order number) they are text.
_SUSPECT_BYTES = (b"NaN", b"Infinity", b"\x00")
_RAW_SURROGATE = re.compile(b"\xed[\xa0-\xbf]")
_FOLD = bytes.maketrans(b"123456789E", b"000000000e")
# In folded text, a number with 19 digits or more or a 3-digit exponent where a JSON value can
# start (after white space, `:`, `,`, `[`, or a byte-order mark, which ends in BF and which
# Python's parser skips).
_HUGE_NUMBER = re.compile(rb"[\s:,\[\xbf]-?(?:0{19}|0+(?:\.0+)?e\+?000)")

Loc = tuple[str | int, ...]


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored as text, or None when it can."""
    if "\x00" in text:
        return "contains U+0000 (NUL), which no text field can hold"
    if not text.isascii() and _SURROGATE.search(text):
        return "contains an unpaired surrogate (U+D800 to U+DFFF), which is not UTF-8 text"
    return None


def refusals(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """(field path, reason) for every part of a parsed JSON value that cannot be stored."""
    if isinstance(value, str):
        reason = unstorable(value)
        if reason is not None:
            yield loc, reason
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            yield loc, "is an integer beyond 64 bits"
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield loc, "is not a finite number"
    elif isinstance(value, dict):
        for key, item in value.items():
            reason = unstorable(key) if isinstance(key, str) else None
            if reason is not None:
                yield (*loc, _shown(key)), f"the name {reason}"
                continue
            yield from refusals(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from refusals(item, (*loc, index))


def row_refusal(row: Any) -> str | None:
    """The error of one row of a bulk body (read by its endpoint, so `check_request` has not
    seen it) that holds a value no field can store, as one line; None when it holds none."""
    found = list(refusals(row))
    if not found:
        return None
    return "; ".join(".".join(str(p) for p in loc) + f": {msg}" for loc, msg in found[:5])


def may_hold_refusals(raw: bytes) -> bool:
    """Whether a JSON or (UTF-8) CSV body may hold a value `refusals` finds; False spares
    parsing it a second time (`check_request`) or walking each of its parsed rows with
    `row_refusal` (a bulk import). Substring searches over the body with its digits folded
    into one byte: a fraction of a regular expression's time, on a body of megabytes and on
    an ordinary one."""
    # An escape is looked for only in a body with a backslash: a search for one byte is a
    # memchr, a search for two a scan of every byte (most bodies have no backslash at all).
    if b"\\" in raw and b"\\u" in raw:
        return True
    if any(mark in raw for mark in _SUSPECT_BYTES):
        return True
    if b"\xed" in raw and _RAW_SURROGATE.search(raw):
        return True
    folded = raw.translate(_FOLD)
    if b"0" * 19 in folded or b"e000" in folded or b"e+000" in folded:
        return _HUGE_NUMBER.search(b" " + folded) is not None  # the body's start is one too
    return False


def _shown(text: str) -> str:
    """`text` as a problem document can show it (escapes instead of what cannot be sent)."""
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")


def refused(found: list[tuple[Loc, str]]) -> ValidationFailed:
    """The 422 listing `found` (at most `MAX_LISTED` of them), FastAPI's `loc` shape."""
    errors = [
        {"loc": list(loc), "msg": msg, "type": "value_unstorable"}
        for loc, msg in found[:MAX_LISTED]
    ]
    detail = "; ".join(".".join(str(p) for p in loc) + f": {msg}" for loc, msg in found[:5])
    return ValidationFailed(detail, errors=errors)


async def check_request(request: Request, *, body: bool) -> None:
    """Refuse (422) a request whose path, query or (when `body`: FastAPI parses it for the
    endpoint) JSON or form body holds a value that cannot be stored."""
    found: list[tuple[Loc, str]] = []
    for name, value in request.path_params.items():
        if isinstance(value, str) and (reason := unstorable(value)) is not None:
            found.append((("path", name), reason))
    # Decoded query text can only hold U+0000 when the raw query spells it (invalid UTF-8 is
    # replaced, never turned into a surrogate).
    if b"%00" in request.scope.get("query_string", b""):
        for name, value in request.query_params.multi_items():
            for text in (name, value):
                if (reason := unstorable(text)) is not None:
                    found.append((("query", _shown(name)), reason))
                    break
    if body:
        found += await _body_refusals(request)
    if found:
        raise refused(found)


async def _body_refusals(request: Request) -> list[tuple[Loc, str]]:
    raw = await request.body()
    if not raw:
        return []
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media == _FORM:
        if b"%00" not in raw and b"\x00" not in raw:
            return []
        found: list[tuple[Loc, str]] = []
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            for text in (name, value):
                if (reason := unstorable(text)) is not None:
                    found.append((("body", _shown(name)), reason))
                    break
        return found
    if (media == "application/json" or media.endswith("+json") or not media) and (
        may_hold_refusals(raw)
    ):
        try:
            # Starlette keeps the parsed document: FastAPI reads the same one afterwards.
            doc = await request.json()
        except ValueError:
            return []  # not JSON: FastAPI answers that itself
        return list(refusals(doc, ("body",)))
    return []


# --- field types ------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}.*)?", re.DOTALL)


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise PydanticCustomError("date_format", "Input should be a date as text, YYYY-MM-DD")


def _iso_timestamp(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_TIMESTAMP.fullmatch(value)):
        return value
    raise PydanticCustomError(
        "datetime_format",
        "Input should be a time as ISO 8601 text with a time zone, e.g. 2024-05-01T08:00:00Z",
    )


# A calendar day, from "YYYY-MM-DD" only (never a number of seconds).
Date = Annotated[date, BeforeValidator(_iso_date)]
# A point in time with its time zone, from ISO 8601 text only (never a number of seconds).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_timestamp)]
