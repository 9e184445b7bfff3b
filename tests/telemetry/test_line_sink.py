"""Log lines written once per loop turn, in order, and never left behind."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import structlog

from chanx.telemetry.line_sink import MAX_PENDING, LineSink, flush_all, sink_for
from chanx.telemetry.logs import configure_logging


class CountingStream(io.StringIO):
    """A text stream that counts its ``write`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def events(self) -> list[str]:
        return [json.loads(line)["event"] for line in self.getvalue().splitlines()]


@pytest.fixture
def stream() -> Iterator[CountingStream]:
    """chanx's logging to a counting stream, then structlog and root as they were."""
    was_configured, config = structlog.is_configured(), structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = CountingStream()
    configure_logging(json=True, level="INFO", stream=out)
    yield out
    structlog.reset_defaults()
    if was_configured:
        structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_lines_of_one_turn_are_written_with_one_call(
    stream: CountingStream,
) -> None:
    log = structlog.get_logger("chanx.test")
    log.info("message_received", action="ping")
    log.info("message_sent", action="pong")
    await asyncio.sleep(0)  # the loop turns
    assert stream.events() == ["message_received", "message_sent"]
    assert stream.writes == 1


async def test_a_warning_is_written_at_once_after_what_waits(
    stream: CountingStream,
) -> None:
    log = structlog.get_logger("chanx.test")
    log.info("first")
    log.warning("trouble")
    # No turn of the loop yet: the warning did not wait, nor did the line before.
    assert stream.events() == ["first", "trouble"]
    log.error("worse")
    assert stream.events() == ["first", "trouble", "worse"]


def test_without_a_loop_every_line_is_written_at_once(stream: CountingStream) -> None:
    structlog.get_logger("chanx.test").info("from_sync_code")
    assert stream.events() == ["from_sync_code"]


async def test_a_thread_without_a_loop_writes_at_once_and_keeps_the_order(
    stream: CountingStream,
) -> None:
    log = structlog.get_logger("chanx.test")
    log.info("on_the_loop")
    thread = threading.Thread(target=lambda: log.info("in_a_thread"))
    thread.start()
    thread.join()
    # The thread's line came second, so it is written second.
    assert stream.events() == ["on_the_loop", "in_a_thread"]


async def test_too_many_waiting_lines_are_written_without_waiting(
    stream: CountingStream,
) -> None:
    log = structlog.get_logger("chanx.test")
    for number in range(MAX_PENDING):
        log.info("line", number=number)
    assert len(stream.events()) == MAX_PENDING
    await asyncio.sleep(0)
    assert len(stream.events()) == MAX_PENDING


async def test_loggers_and_stdlib_records_of_one_stream_keep_their_order(
    stream: CountingStream,
) -> None:
    structlog.get_logger("chanx.one").info("a")
    logging.getLogger("django.request").info("b")
    structlog.get_logger("chanx.two").info("c")
    await asyncio.sleep(0)
    assert stream.events() == ["a", "b", "c"]


def test_lines_waiting_for_a_loop_that_closed_are_flushed() -> None:
    out = CountingStream()
    sink = LineSink(out)

    loop = asyncio.new_event_loop()
    loop.call_soon(sink.write_soon, "waiting")
    loop.call_soon(loop.stop)  # stops before the turn that would write
    loop.run_forever()
    loop.close()
    assert out.getvalue() == ""
    flush_all()  # what the atexit hook runs
    assert out.getvalue() == "waiting\n"
    # The next line, from no loop, is written at once.
    sink.write_soon("next")
    assert out.getvalue() == "waiting\nnext\n"


async def test_a_stream_that_fails_does_not_break_the_loop(
    capfd: pytest.CaptureFixture[str],
) -> None:
    out = io.StringIO()
    sink = LineSink(out)
    sink.write_soon("lost")
    out.close()
    await asyncio.sleep(0)  # the turn writes, and the closed stream refuses
    assert "log lines could not be written" in capfd.readouterr().err


def test_one_sink_per_stream() -> None:
    out = io.StringIO()
    assert sink_for(out) is sink_for(out)
    assert sink_for(out) is not sink_for(io.StringIO())
