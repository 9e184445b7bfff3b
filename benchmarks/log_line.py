"""One JSON log line and the log context: chanx's pipeline vs structlog's stock one.

chanx writes two lines per frame at INFO (``message_received``,
``message_sent``) and binds ``action`` while a frame is handled, so both are
paid per message. Variants, timed interleaved in one process (rounds rotate
the order; medians of the per-round times and of the per-round ratios):

- ``stock``: the processors chanx used to chain, as structlog ships them:
  ``merge_contextvars``, ``add_log_level``, ``add_logger_name``,
  ``TimeStamper(fmt="iso", utc=True)``, ``add_trace_context``,
  ``StackInfoRenderer``, ``format_exc_info``, chanx's ``redact`` and
  ``JSONRenderer()``; the context bound and restored with
  ``bind_contextvars``/``reset_contextvars``;
- ``chanx``: what ``configure_logging(json=True)`` sets up, and
  :class:`~chanx.telemetry.logs.LogContextHooks`.

Both loggers are bound as a consumer's is (``connection_id``, ``consumer``,
``path``, ``route``) and write to /dev/null; the connection's context
variables are bound as ``LogContextHooks`` binds them. Run
``.venv/bin/python benchmarks/log_line.py``; the ratio column is what counts.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "example")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import structlog  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

from chanx.hooks import ConnectionInfo  # noqa: E402
from chanx.telemetry.config import TelemetryConfig  # noqa: E402
from chanx.telemetry.logs import (  # noqa: E402
    LogContextHooks,
    add_trace_context,
    configure_logging,
    redact,
)

CALLS = int(os.environ.get("CALLS", "5000"))
ROUNDS = int(os.environ.get("ROUNDS", "15"))
CONN = ConnectionInfo("c0ffee", "RoomConsumer", "/ws/room/1/", "/ws/room/<room>/")
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

Variants = dict[str, Callable[[], Any]]


def bound_logger() -> Any:
    """A logger of the current configuration, bound as a consumer binds its own."""
    return structlog.get_logger("chanx.consumer").bind(
        connection_id=CONN.connection_id,
        consumer=CONN.consumer,
        path=CONN.path,
        route=CONN.route,
    )


def stock_logger() -> Any:
    """Like :func:`chanx_logger`, with structlog's stock processors instead."""
    keys = TelemetryConfig().redact_keys
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_trace_context,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact(keys),
            structlog.processors.JSONRenderer(),
        ]
    )
    return bound_logger()


def chanx_logger() -> Any:
    """A logger of ``configure_logging(json=True)``."""
    configure_logging(json=True, stream=DEVNULL)
    logging.getLogger().handlers.clear()  # stdlib records are not measured
    return bound_logger()


def stock_context() -> None:
    tokens = structlog.contextvars.bind_contextvars(action="ping")
    structlog.contextvars.reset_contextvars(**tokens)


def chanx_context(hooks: LogContextHooks) -> Callable[[], None]:
    def bind_restore() -> None:
        hooks.message_received(CONN, "ping", 20, {}).finish("ok")

    return bind_restore


def microseconds(call: Callable[[], Any]) -> float:
    return timeit.timeit(call, number=CALLS) / CALLS * 1e6


def compare(variants: Variants) -> tuple[dict[str, float], dict[str, float]]:
    """Median µs per call of each variant, and median per-round ratio to the first."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for call in variants.values():
        call()
    for index in range(ROUNDS):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            times[name].append(microseconds(variants[name]))
    base = times[names[0]]
    medians = {name: statistics.median(times[name]) for name in names}
    ratios = {
        name: statistics.median(t / b for t, b in zip(times[name], base, strict=True))
        for name in names
    }
    return medians, ratios


def report(title: str, variants: Variants) -> None:
    medians, ratios = compare(variants)
    print(title)
    for name in variants:
        print(f"  {name:28s} {medians[name]:7.2f} us   ratio {ratios[name]:5.2f}")


def main() -> None:
    structlog.contextvars.bind_contextvars(
        connection_id=CONN.connection_id, consumer=CONN.consumer, route=CONN.route
    )
    chanx = chanx_logger()
    stock = stock_logger()  # keeps the rest of chanx's configuration
    lines: Variants = {
        "stock": lambda: stock.info("message_received", action="ping"),
        "chanx": lambda: chanx.info("message_received", action="ping"),
    }
    print(f"calls={CALLS} x rounds={ROUNDS}, interleaved; ratio = x / stock")
    report("one JSON log line, no active span", lines)
    with TracerProvider().get_tracer("bench").start_as_current_span("receive"):
        report("one JSON log line, inside a span", lines)
    report(
        "log context (bind/restore action)",
        {
            "stock": stock_context,
            "chanx": chanx_context(LogContextHooks(TelemetryConfig())),
        },
    )


if __name__ == "__main__":
    main()
