"""JSON logs with the request id on every line, written off the event loop."""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import sys
import time
from collections import deque
from logging.handlers import QueueHandler, QueueListener
from typing import Any

import orjson
from pythonjsonlogger.json import JsonFormatter

from servicekit.context import request_id_var

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS
# How long the writer lets lines gather once one is queued: a line reaches stderr at most this
# late, and the writer's thread wakes a few times a second instead of once per request.
_GATHER_SECONDS = 0.05


class _RequestIdFilter(logging.Filter):
    def __init__(self, app_name: str) -> None:
        super().__init__()
        self.app_name = app_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.app = self.app_name
        return True


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

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        try:
            return orjson.dumps(log_data, default=str, option=_ORJSON_OPTIONS).decode()
        except TypeError:
            # What orjson refuses (ints beyond 64 bits, ...) python-json-logger renders.
            return super().jsonify_log_record(log_data)


class _Handler(QueueHandler):
    """Each line goes to the `sys.stderr` of the moment it was logged, whenever the listener
    writes it: test runners swap the stream per test, and a line must land in its own test's
    output, never in a later one's or on the terminal."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The line as formatted here, on a bare record: the writer reads only `msg` and
        # `stream`. `QueueHandler.prepare` would copy the whole record (every attribute of
        # a line written on every request) to leave the original untouched for other
        # handlers; this leaves it untouched without copying it.
        line = logging.LogRecord.__new__(logging.LogRecord)
        line.msg = self.format(record)
        line.stream = sys.stderr
        return line


class _Listener(QueueListener):
    """The standard library's listener, waking once per batch of lines instead of per line.

    Each wake-up of the writer's thread cost a thread switch and two hand-overs of the GIL with
    the event loop's thread, several times the line itself on a machine whose cores are busy
    (bench/README.md, 2026-12-03). `dequeue` is the documented place to change how records are
    taken; here it waits a moment after the first line and hands on the lines queued meanwhile
    as one record per stream (one write)."""

    def __init__(self, lines: queue.SimpleQueue[Any], writer: logging.Handler) -> None:
        super().__init__(lines, writer)
        self._lines = lines
        self._ready: deque[Any] = deque()

    def dequeue(self, block: bool) -> Any:
        if self._ready:
            return self._ready.popleft()
        first = self._lines.get(block)
        if not isinstance(first, logging.LogRecord):
            return first  # the sentinel that stops the listener
        time.sleep(_GATHER_SECONDS)
        batch = [first]
        while True:
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, logging.LogRecord):
                self._ready.append(item)  # after the lines queued before it
                break
            batch.append(item)
        self._ready.extendleft(reversed(_by_stream(batch)))
        return self._ready.popleft()


def _by_stream(lines: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """Consecutive lines bound for the same stream joined into one record, in order."""
    groups: list[list[logging.LogRecord]] = []
    for line in lines:
        if groups and getattr(groups[-1][0], "stream", None) is getattr(line, "stream", None):
            groups[-1].append(line)
        else:
            groups.append([line])
    for group in groups:
        if len(group) > 1:
            group[0].msg = "\n".join(str(line.msg) for line in group)
    return [group[0] for group in groups]


class _Writer(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        stream = getattr(record, "stream", sys.stderr)
        with contextlib.suppress(OSError, ValueError):  # that stream is closed by now
            stream.write(f"{record.msg}\n")
            stream.flush()


_handler: QueueHandler | None = None


def configure_logging(app_name: str, level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process: records are formatted where they are
    logged (the request id is that context's) and written by the standard library's
    `QueueListener` on its own thread, so no request waits for a write."""
    global _handler
    if _handler is None:
        lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _handler = _Handler(lines)
        _handler.setFormatter(
            FastJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(app)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
        listener = _Listener(lines, _Writer())
        listener.start()
        atexit.register(listener.stop)  # what is queued is written before the process ends
    # No line carries the thread or the process: the logging module's documented switches
    # spare every record (one per request) looking them up.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
