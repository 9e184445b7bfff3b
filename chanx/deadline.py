"""A deadline for one await, with no timer unless the await has to wait.

Every outgoing frame is sent under ``SEND_TIMEOUT``, but under uvicorn a send
almost never waits: it hands the bytes to the transport and returns. A timer
per frame (``asyncio.timeout``, ``call_later``) costs a few microseconds to
schedule and cancel for nothing. :func:`within` runs the awaitable until it
first suspends; only then is a timer started, so the common case pays no
timer at all, and one that waits is bounded as before.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Awaitable, Generator, Iterator
from types import CoroutineType
from typing import Any, TypeVar

__all__ = ["within"]

T = TypeVar("T")


def within(awaitable: Awaitable[T], timeout: float | None) -> Awaitable[T]:
    """Await ``awaitable`` in this task; raise ``TimeoutError`` after ``timeout`` s.

    The clock starts when ``awaitable`` first has to wait (the synchronous
    part before that takes no time worth bounding). On expiry the current
    task is cancelled, the cancellation is turned into ``TimeoutError`` and
    the task's cancel count restored (Python 3.11+), as ``asyncio.timeout``
    does; a cancellation from elsewhere goes through unchanged. Unlike
    ``asyncio.wait_for`` on Python 3.10, the awaitable runs in the calling
    task, so hooks see a frame before the peer can answer it.

    Args:
        awaitable: What to wait for (a coroutine, usually).
        timeout: Seconds, or ``None`` for no deadline.
    """
    if timeout is None:
        return awaitable
    # types.coroutine makes the generator awaitable; typeshed keeps its type.
    return _within(awaitable, timeout)  # type: ignore[return-value]


@types.coroutine
def _within(awaitable: Awaitable[T], timeout: float) -> Generator[Any, Any, T]:
    # A generator rather than an object with __await__: it runs on every
    # frame sent, and this is one object and call less. A coroutine is
    # driven as it is, other awaitables through their iterator.
    steps: Any = (
        awaitable if awaitable.__class__ is CoroutineType else awaitable.__await__()
    )
    try:
        first = steps.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    # It waits: from here on a timer bounds it.
    return (yield from _bounded(steps, first, timeout))


def _bounded(
    steps: Iterator[Any], first: Any, timeout: float
) -> Generator[Any, Any, T]:
    task = asyncio.current_task()
    assert task is not None, "within() needs a running task"
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return (yield from _resume(steps, first))
    except asyncio.CancelledError:
        if not expired:
            raise
        if sys.version_info >= (3, 11):
            task.uncancel()
        raise TimeoutError() from None
    finally:
        handle.cancel()


def _resume(steps: Any, pending: Any) -> Generator[Any, Any, T]:
    """Go on with ``steps`` (already started, waiting on ``pending``), as
    ``yield from`` would have: what the task sends or throws goes to it."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            steps.close()
            raise
        except BaseException as exc:  # the task throws in its cancellation
            try:
                pending = steps.throw(exc)
            except StopIteration as done:
                result: T = done.value
                return result
        else:
            try:
                pending = steps.send(sent)
            except StopIteration as done:
                result = done.value
                return result
