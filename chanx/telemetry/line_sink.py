"""Log lines to a stream, written once per event-loop turn instead of per line.

chanx logs a line per frame in and out by default. Written one by one, each
line is a ``write`` and a ``flush`` (with a line-buffered file or
``PYTHONUNBUFFERED``, a system call per line) under a lock. A
:class:`LineSink` keeps the lines logged on a thread that runs an asyncio
loop and writes them with a single call when the loop turns (``call_soon``):
a busy server writes a batch of lines per turn, and a line never waits
longer than the loop takes to come back to it.

A line is written at once, after whatever waits before it, when:

- it is a warning or worse (:meth:`LineSink.write_now`), so an error is on
  disk before whatever comes next, even a crash;
- no loop runs on the calling thread (sync code, a thread pool), or the
  waiting lines belong to another loop's turn;
- :data:`MAX_PENDING` lines wait already.

Lines still waiting when the process exits are written by an ``atexit``
hook; :func:`flush_all` does the same on demand (a test reading the stream
at once, or a loop closed before its turn came).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import weakref
from typing import TextIO

__all__ = ["MAX_PENDING", "LineHandler", "LineSink", "flush_all", "sink_for"]

#: Lines kept before they are written without waiting for the loop's turn.
MAX_PENDING = 256

_sinks: weakref.WeakSet[LineSink] = weakref.WeakSet()
# One sink per stream, so every logger and handler of it keeps one order.
_by_stream: dict[int, LineSink] = {}
_registry_lock = threading.Lock()
# Streams are few (stdout, a file); the cap only guards against odd callers.
_MAX_STREAMS = 64
# asyncio's C accessor: None when no loop runs on this thread.
_running_loop = asyncio._get_running_loop


class LineSink:
    """Writes lines for every logger of one stream, in the order logged.

    Args:
        file: The text stream the lines go to (one newline added to each).
    """

    __slots__ = ("__weakref__", "_lock", "_pending", "_turn", "file")

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self._lock = threading.Lock()
        self._pending: list[str] = []
        # The loop whose next turn writes the waiting lines, if any.
        self._turn: asyncio.AbstractEventLoop | None = None
        _sinks.add(self)

    def write_soon(self, line: str) -> None:
        """Write ``line`` when this thread's loop turns (now without a loop)."""
        loop = _running_loop()
        with self._lock:
            turn = self._turn
            if loop is None or (turn is not None and turn is not loop):
                self._write_locked(line)
                if turn is not None and turn.is_closed():
                    self._turn = None  # its turn will never come
                return
            pending = self._pending
            pending.append(line)
            if turn is None:
                loop.call_soon(self._on_turn)
                self._turn = loop
            elif len(pending) >= MAX_PENDING:
                self._write_locked(None)

    def write_now(self, line: str) -> None:
        """Write what waits, then ``line``, and flush the stream."""
        with self._lock:
            self._write_locked(line)

    def flush(self) -> None:
        """Write the waiting lines now."""
        with self._lock:
            if self._pending:
                self._write_locked(None)

    def _on_turn(self) -> None:
        with self._lock:
            self._turn = None
            if not self._pending:
                return
            try:
                self._write_locked(None)
            except Exception as exc:
                # The loop would log it through the very handler that failed.
                _report(exc)

    def _write_locked(self, line: str | None) -> None:
        pending = self._pending
        if line is not None:
            pending.append(line)
        if not pending:
            return
        text = "\n".join(pending) + "\n"
        pending.clear()
        self.file.write(text)
        self.file.flush()


def sink_for(file: TextIO) -> LineSink:
    """The sink of ``file``, shared by everything writing lines to it."""
    sink = _by_stream.get(id(file))
    if sink is not None and sink.file is file:
        return sink
    with _registry_lock:
        sink = _by_stream.get(id(file))
        # The identity check: a new stream may reuse a closed one's id.
        if sink is None or sink.file is not file:
            if len(_by_stream) >= _MAX_STREAMS:
                flush_all()
                _by_stream.clear()
            sink = _by_stream[id(file)] = LineSink(file)
        return sink


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stdlib ``StreamHandler`` writing through its stream's :class:`LineSink`.

    Stdlib records (Django, uvicorn) then keep their place among structlog
    lines: below ``WARNING`` when the loop turns, the rest at once.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            sink = sink_for(self.stream)
            if record.levelno >= logging.WARNING:
                sink.write_now(text)
            else:
                sink.write_soon(text)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def flush_all() -> None:
    """Write the waiting lines of every sink (also run at exit)."""
    for sink in list(_sinks):
        try:
            sink.flush()
        except Exception as exc:
            _report(exc)


def _report(exc: Exception) -> None:
    stderr = sys.__stderr__
    if stderr is not None:
        stderr.write(f"chanx: log lines could not be written: {exc!r}\n")


atexit.register(flush_all)
