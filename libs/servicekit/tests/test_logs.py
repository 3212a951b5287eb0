"""The kit's logs: one JSON line per record on stderr, written by the standard library's queue
listener, the access line of every request carrying its request id."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from servicekit.testing.harness import wait_until
from servicekit.testing.tokens import make_principal


class Lines:
    def __init__(self, captured: pytest.CaptureFixture[str]) -> None:
        self.captured = captured
        self.seen: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        for line in self.captured.readouterr().err.splitlines():
            if line.startswith("{"):
                self.seen.append(json.loads(line))
        return self.seen


async def test_a_requests_access_line_and_an_error_with_its_traceback(sample, capsys):
    lines = Lines(capsys)
    me = make_principal()
    resp = await sample.client.post(
        "/widgets", json={"name": "a"}, headers={**sample.headers(me), "X-Request-ID": "req-42"}
    )
    assert resp.status_code == 201

    def access_line() -> dict[str, Any] | None:
        return next((x for x in lines.read() if x.get("request_id") == "req-42"), None)

    line = await wait_until(access_line, what="the access line on stderr")
    assert line == {
        "time": line["time"],
        "level": "INFO",
        "logger": "servicekit.access",
        "message": "request",
        "app": "kitsample",
        "request_id": "req-42",
        "method": "POST",
        "path": "/widgets",
        "route": "/widgets",
        "status": 201,
        "duration_ms": line["duration_ms"],
    }

    try:
        raise RuntimeError("broken on purpose")
    except RuntimeError:
        logging.getLogger("servicekit.test").exception("it failed: %s", "details")

    def error_line() -> dict[str, Any] | None:
        return next((x for x in lines.read() if x.get("logger") == "servicekit.test"), None)

    error = await wait_until(error_line, what="the error line on stderr")
    assert error["level"] == "ERROR" and error["message"] == "it failed: details"
    assert "RuntimeError: broken on purpose" in error["exc_info"]
    assert error["request_id"] is None  # logged outside any request


async def test_a_burst_of_lines_arrives_whole_and_in_order(sample, capsys):
    # The writer takes what gathered while it waited in one write: each line stays one JSON
    # document on its own line, none lost, none reordered.
    lines = Lines(capsys)
    burst = logging.getLogger("servicekit.burst")
    for i in range(300):
        burst.info("line %d", i)

    def all_lines() -> list[str] | None:
        got = [x["message"] for x in lines.read() if x.get("logger") == "servicekit.burst"]
        return got if len(got) >= 300 else None

    got = await wait_until(all_lines, what="the burst's 300 lines on stderr")
    assert got == [f"line {i}" for i in range(300)]
