"""The access line every forwarded call writes (kit: servicekit.logs.log_without_record): the
shortcut past the LogRecord writes exactly the line the record would have given, and stands
aside whenever anything else would see the record."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from servicekit import logs
from servicekit.context import request_id_var
from servicekit.logs import configure_logging, log_without_record

FIELDS: dict[str, Any] = {
    "method": "GET",
    "path": "/api/v1/customers/1",
    "route": "/api/v1/customers/{path}",
    "status": 200,
    "duration_ms": 0.42,
}


@pytest.fixture
def kit_logging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> pytest.CaptureFixture[str]:
    """The kit's logging; lines land in the captured stderr."""
    configure_logging("gateway", "INFO")
    return capsys


def _kit_handler_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # In the test's body: pytest's logging plugin adds its capture handler as each phase
    # starts, and with it on the root the shortcut rightly stands aside.
    assert logs._handler is not None
    monkeypatch.setattr(logging.getLogger(), "handlers", [logs._handler])


def _lines(captured: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert logs._handler is not None
    logs._handler.flush()
    return [json.loads(line) for line in captured.readouterr().err.splitlines()]


def test_the_line_without_a_record_is_the_records_line(
    kit_logging: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _kit_handler_alone(monkeypatch)
    access = logging.getLogger("servicekit.access")
    token = request_id_var.set("req-0001")
    try:
        assert log_without_record(access, logging.INFO, "request", dict(FIELDS))
        access.handle(
            access.makeRecord(
                access.name, logging.INFO, __file__, 0, "request", (), None, "f", dict(FIELDS)
            )
        )
    finally:
        request_id_var.reset(token)
    direct, classic = _lines(kit_logging)
    # Same second, same format; the milliseconds may differ.
    assert direct.pop("time")[:19] == classic.pop("time")[:19]
    assert list(direct.items()) == list(classic.items())
    assert direct == {
        "level": "INFO",
        "logger": "servicekit.access",
        "message": "request",
        "app": "gateway",
        "request_id": "req-0001",
        **FIELDS,
    }


def test_anything_else_that_would_see_the_record_keeps_the_record(
    kit_logging: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _kit_handler_alone(monkeypatch)
    access = logging.getLogger("servicekit.access")
    seen: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    capture = Capture()
    access.addHandler(capture)
    try:
        assert not log_without_record(access, logging.INFO, "request", dict(FIELDS))
    finally:
        access.removeHandler(capture)

    def drop_all(record: logging.LogRecord) -> bool:
        return False

    access.addFilter(drop_all)
    try:
        assert not log_without_record(access, logging.INFO, "request", dict(FIELDS))
    finally:
        access.removeFilter(drop_all)

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [*root.handlers, logging.NullHandler()])
    assert not log_without_record(access, logging.INFO, "request", dict(FIELDS))
    assert _lines(kit_logging) == []
