"""Graceful shutdown: which consumers are live, closing them, and exit callbacks.

The core runs no server. A server (``python -m chanx.serve``) calls
:func:`drain` when it is told to stop, then :func:`run_shutdown_callbacks`;
telemetry registers its span flush with :func:`on_shutdown`. So the core
imports neither uvicorn nor telemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from typing import Any

import structlog

__all__ = [
    "GOING_AWAY",
    "drain",
    "is_draining",
    "is_live",
    "live_consumers",
    "on_shutdown",
    "register",
    "run_shutdown_callbacks",
    "unregister",
]

_log = structlog.get_logger("chanx.drain")

#: Close code sent to clients when the server shuts down (RFC 6455 "going away").
GOING_AWAY = 1001

_live: weakref.WeakSet[Any] = weakref.WeakSet()
_callbacks: list[Callable[[float], object]] = []
_draining = False
# Set by unregister() when the last connection ends while draining.
_all_closed: asyncio.Event | None = None
# Strong references to the close tasks: the loop keeps only weak ones.
_closing: set[asyncio.Task[None]] = set()


def register(consumer: Any) -> None:
    """Track ``consumer`` (it has ``async def close_gracefully(code)``).

    A consumer that starts while the process drains is closed at once.
    """
    _live.add(consumer)
    if _draining:
        _ask_to_close(consumer)


def unregister(consumer: Any) -> None:
    """Stop tracking ``consumer`` (its connection ended)."""
    _live.discard(consumer)
    if _all_closed is not None and not _live:
        _all_closed.set()


def live_consumers() -> list[Any]:
    """The consumers of this process whose connections are open."""
    return list(_live)


def is_live(consumer: Any) -> bool:
    """True while ``consumer``'s connection is open."""
    return consumer in _live


def is_draining() -> bool:
    """True once :func:`drain` has been called."""
    return _draining


def _ask_to_close(consumer: Any) -> None:
    task = asyncio.get_running_loop().create_task(consumer.close_gracefully(GOING_AWAY))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def drain(timeout: float) -> int:
    """Close every live connection with 1001 once its in-flight message is handled.

    Args:
        timeout: Seconds to wait for the connections to end.

    Returns:
        How many connections were still open when ``timeout`` ran out.
    """
    global _draining, _all_closed
    _draining = True
    _all_closed = asyncio.Event()
    if not _live:
        _all_closed.set()
    consumers = live_consumers()
    _log.info("drain_started", connections=len(consumers), timeout=timeout)
    for consumer in consumers:
        _ask_to_close(consumer)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(_all_closed.wait(), timeout)
    left = len(_live)
    if left:
        _log.warning("drain_timeout", connections=left, timeout=timeout)
    else:
        _log.info("drain_finished")
    return left


def on_shutdown(callback: Callable[[float], object]) -> None:
    """Run ``callback(timeout_seconds)`` when the server stops, after draining.

    Telemetry uses it to flush spans; a callback that raises is logged and
    skipped.
    """
    if callback not in _callbacks:
        _callbacks.append(callback)


def run_shutdown_callbacks(timeout: float) -> None:
    """Call each :func:`on_shutdown` callback with ``timeout`` (seconds), once."""
    callbacks = list(_callbacks)
    _callbacks.clear()
    for callback in callbacks:
        try:
            callback(timeout)
        except Exception:
            _log.error("shutdown_callback_failed", exc_info=True)


def _reset() -> None:
    """Forget the drain state (for tests running several servers in one process)."""
    global _draining, _all_closed
    _draining = False
    _all_closed = None
    _callbacks.clear()
