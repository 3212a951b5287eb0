"""JSON logs with the request id on every line."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from typing import Any, TextIO

import orjson
from pythonjsonlogger.json import JsonFormatter

from servicekit.context import request_id_var

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


class _RequestIdFilter(logging.Filter):
    def __init__(self, app_name: str) -> None:
        super().__init__()
        self.app_name = app_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.app = self.app_name
        return True


class BatchingStderrHandler(logging.Handler):
    """Formats on the caller's thread, writes to stderr in batches.

    One `write` per line was ~15 % of a proxied request's CPU in the gateway (a syscall per
    access line). Lines are gathered and written every `interval` seconds or when `max_bytes`
    are waiting; WARNING and above are written at once with everything before them, so an
    error is never held back. Each line goes to the `sys.stderr` of the moment it was logged
    (test runners swap it per test), so a batch never lands in another test's output.
    """

    def __init__(self, interval: float = 0.2, max_bytes: int = 64 * 1024) -> None:
        super().__init__()
        self._pending: list[tuple[TextIO, str]] = []
        self._size = 0
        self._guard = threading.Lock()
        self._max_bytes = max_bytes
        self._interval = interval
        threading.Thread(target=self._flush_periodically, name="log-writer", daemon=True).start()
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        self.write_line(line, record.levelno)

    def write_line(self, line: str, levelno: int) -> None:
        """Queue one formatted line (ending in a newline) as `emit` does."""
        with self._guard:
            self._pending.append((sys.stderr, line))
            self._size += len(line)
            urgent = levelno >= logging.WARNING or self._size >= self._max_bytes
        if urgent:
            self.flush()

    def flush(self) -> None:
        with self._guard:
            if not self._pending:
                return
            pending, self._pending = self._pending, []
            self._size = 0
        batches: dict[int, tuple[TextIO, list[str]]] = {}
        for stream, line in pending:
            batches.setdefault(id(stream), (stream, []))[1].append(line)
        for stream, lines in batches.values():
            try:
                stream.write("".join(lines))
                stream.flush()
            except (OSError, ValueError):
                pass  # that stream is closed (process exiting, test output gone)

    def _flush_periodically(self) -> None:
        while True:
            time.sleep(self._interval)
            self.flush()


class FastJsonFormatter(JsonFormatter):
    """python-json-logger's fields and order, at a fraction of the cost per line.

    Every request writes an access line, so this sits on the hot path: profiling showed the
    stdlib `json` encoder and `time.strftime` as most of the formatting time. orjson writes
    the same document (compact, UTF-8); the date part of `asctime` is rendered once per second.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._second = -1
        self._second_text = ""
        self._fields = [(f, self._get_rename(f)) for f in self._required_fields]
        self._plain = not (
            self.defaults or self.static_fields or self.timestamp or self.rename_fields_keep_missing
        )

    def format(self, record: logging.LogRecord) -> str:
        # The common line (a text message, no exception, no stack) built in one pass; the
        # document is the one `JsonFormatter.format` builds, every other case goes there.
        if (
            not self._plain
            or isinstance(record.msg, dict)
            or record.exc_info
            or record.exc_text
            or record.stack_info
        ):
            return super().format(record)
        record.message = record.getMessage()
        if "asctime" in self._required_fields:
            record.asctime = self.formatTime(record, self.datefmt)
        attrs = record.__dict__
        return self._document(attrs, attrs)

    def _document(self, values: dict[str, Any], extra: dict[str, Any]) -> str:
        """The required fields from `values`, then every public attribute of `extra`."""
        data: dict[str, Any] = {out: values.get(field) for field, out in self._fields}
        skip, rename = self._skip_fields, self.rename_fields
        for key, value in extra.items():
            if key not in skip and not key.startswith("_"):
                data[rename.get(key, key)] = value
        return self.serialize_log_record(self.process_log_record(data))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None or self.converter is not time.localtime:
            return super().formatTime(record, datefmt)
        return self._local_time(record.created, record.msecs)

    def _local_time(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._second = second
        return f"{self._second_text},{int(msecs):03d}"

    def line_without_record(
        self,
        logger: str,
        levelno: int,
        message: str,
        attributes: dict[str, Any],
        fields: dict[str, Any],
    ) -> str | None:
        """The line `format` would write for a plain-text record of `logger` whose filters
        set `attributes` and whose `extra` was `fields`; None when it cannot tell (another
        datefmt or converter, static or default fields)."""
        if not self._plain or self.datefmt is not None or self.converter is not time.localtime:
            return None
        created = time.time()
        # As LogRecord computes them.
        values = {
            "asctime": self._local_time(created, int((created - int(created)) * 1000) + 0.0),
            "levelname": logging.getLevelName(levelno),
            "name": logger,
            "message": message,
            **attributes,
        }
        return self._document(values, fields)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        try:
            return orjson.dumps(log_data, default=str, option=_ORJSON_OPTIONS).decode()
        except TypeError:
            # What orjson refuses (ints beyond 64 bits, ...) python-json-logger renders.
            return super().jsonify_log_record(log_data)


_handler: BatchingStderrHandler | None = None


def log_without_record(
    logger: logging.Logger, levelno: int, message: str, fields: dict[str, Any]
) -> bool:
    """Write `logger.log(levelno, message, extra=fields)`'s line straight to the kit's handler,
    skipping the LogRecord and the handler chain (~30 us of a request's access line), when the
    record would reach that handler alone and unchanged: the logger and its ancestors carry no
    other handler or filter, only the kit's handler on the root, with its own filter and
    formatter. Answers False, having written nothing, whenever that is not so (a test's
    capture handler, a custom config): the caller then logs as usual."""
    handler = _handler
    if handler is None or levelno < handler.level or logger.disabled:
        return False
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters or (node.level and levelno < node.level):
            return False
        if node.parent is None:
            if node.handlers != [handler]:
                return False
            break
        if node.handlers or not node.propagate or node.disabled:
            return False
        node = node.parent
    if len(handler.filters) != 1 or type(handler.filters[0]) is not _RequestIdFilter:
        return False
    formatter = handler.formatter
    if type(formatter) is not FastJsonFormatter:
        return False
    attributes = {"app": handler.filters[0].app_name, "request_id": request_id_var.get()}
    line = formatter.line_without_record(logger.name, levelno, message, attributes, fields)
    if line is None:
        return False
    handler.write_line(line + "\n", levelno)
    return True


def configure_logging(app_name: str, level: str = "INFO") -> None:
    # One handler (and one writer thread) per process, however many apps it builds.
    global _handler
    if _handler is None:
        _handler = BatchingStderrHandler()
        _handler.setFormatter(
            FastJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(app)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    handler = _handler
    handler.filters = [_RequestIdFilter(app_name)]
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Our middleware writes one access line per request; uvicorn's would be a second, unstructured.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
