"""The consumer's dispatch loop: client frames and channel-layer messages.

Channels' ``await_many_dispatch`` cancels the pending channel-layer receive
when a connection ends. With channels-redis that can lose a message meant
for *another* connection: all consumers of a process share one Redis list,
one of them at a time pops it for everyone (BZPOPMIN), and a receive
cancelled while Redis's reply is on the wire drops the redis-py connection
with the message already taken off the list. Under a mass disconnect, the
popping consumer is often one of those leaving.

:func:`dispatch_messages` therefore ends a pending layer receive by handing
it a :data:`WAKEUP` message for the consumer's own channel and letting it
finish; what it returns, addressed to a connection that is gone, is
discarded. With channels-redis the wakeup goes straight into the layer's
in-process buffer, and through Redis only for the one receive that is
popping. Only when that fails or takes longer than :data:`SETTLE_TIMEOUT`
is the receive cancelled (logged as ``layer_receive_cancelled``).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, Final, Literal, TypedDict

import structlog

from chanx.faults import layer_is_down, receive_after_failure, within

__all__ = ["SETTLE_TIMEOUT", "WAKEUP", "WakeupMessage", "dispatch_messages"]

_log = structlog.get_logger("chanx.dispatch")

#: The ``type`` of the message a consumer sends itself to end its layer receive.
WAKEUP: Final = "chanx.wakeup"
#: Seconds an ending consumer waits for its layer receive before cancelling it.
SETTLE_TIMEOUT = 2.0
# Loop iterations a locally woken receive may take to return (it needs ~4).
_LOCAL_WAKE_ITERATIONS = 20

Source = Callable[[], Awaitable[dict[str, Any]]]


class WakeupMessage(TypedDict):
    """Channel-layer payload that wakes the consumer's own pending receive."""

    type: Literal["chanx.wakeup"]
    #: ``local``: put in channels-redis's buffer; ``layer``: sent through the layer.
    route: Literal["local", "layer"]


async def dispatch_messages(consumer: Any, receive: Source) -> None:
    """Pass ASGI and channel-layer messages to ``consumer.dispatch`` until it stops.

    Like Channels' ``await_many_dispatch``: one message at a time, and an
    exception raised by a source or by ``dispatch`` (``StopConsumer``
    included) ends the loop and propagates. On the way out the client
    receive is cancelled, the channel-layer receive is settled (see the
    module docstring).

    Args:
        consumer: Has ``dispatch``, ``channel_layer`` (None: no layer) and,
            with a layer, ``channel_name``.
        receive: The ASGI ``receive`` callable.
    """
    finished = _Finished(asyncio.get_running_loop())
    tasks = [finished.start(receive())]
    # The layer's own receive, not chanx.faults.receive_from_layer: one
    # coroutine less for every idle connection. A failure is waited out
    # below, as receive_from_layer would.
    if consumer.channel_layer is not None:
        tasks.append(finished.start(_layer_receive(consumer)))
    ready = finished.ready
    try:
        while True:
            while not ready:
                await finished.waiter()
            task = ready.pop(0)
            index = 0 if task is tasks[0] else 1
            failure = task.exception() if index else None
            if isinstance(failure, Exception):
                tasks[index] = finished.start(receive_after_failure(consumer, failure))
                continue
            message = task.result()
            await consumer.dispatch(message)
            source = _layer_receive(consumer) if index else receive()
            tasks[index] = finished.start(source)
    finally:
        await _cancel(tasks[0])
        if len(tasks) > 1:
            await _settle(consumer, tasks[1])


class _Finished:
    """The source tasks of one connection, handed out as they finish.

    What ``asyncio.wait(FIRST_COMPLETED)`` did, for less per message: it
    adds and removes a done callback on every task and builds two sets each
    time; here a task gets one callback for its life, which queues it in
    :attr:`ready`. An idle connection keeps two tasks and one waiter: the
    instance is the tasks' callback (no bound method per task), run in one
    context of its own (no copy of the caller's per task), and waiting is
    awaiting :meth:`waiter` (no coroutine of its own).
    """

    __slots__ = ("_context", "_loop", "_waiter", "ready")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # A list, not a deque: it holds at most two tasks, and an empty
        # deque costs every idle connection over half a KiB.
        self.ready: list[asyncio.Future[dict[str, Any]]] = []
        self._waiter: asyncio.Future[None] | None = None
        # Reads no context variable; one context per connection, not per
        # task: a context shared across threads could be entered twice.
        self._context = contextvars.Context()

    def start(
        self, receive: Awaitable[dict[str, Any]]
    ) -> asyncio.Future[dict[str, Any]]:
        """Run ``receive`` as a task that lands in :attr:`ready` once it finishes."""
        # A task per frame: a coroutine (uvicorn's receive, a layer's) goes
        # to the loop directly, without ensure_future's two Python calls.
        task: asyncio.Future[dict[str, Any]] = (
            self._loop.create_task(receive)
            if receive.__class__ is CoroutineType
            else asyncio.ensure_future(receive)
        )
        task.add_done_callback(self, context=self._context)
        return task

    def __call__(self, task: asyncio.Future[dict[str, Any]]) -> None:
        self.ready.append(task)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def waiter(self) -> asyncio.Future[None]:
        """A future done when the next task finishes."""
        waiter = self._waiter = self._loop.create_future()
        return waiter


def _layer_receive(consumer: Any) -> Awaitable[dict[str, Any]]:
    # A plain function: it returns the layer's coroutine instead of wrapping
    # it in one of its own.
    receive: Awaitable[dict[str, Any]] = consumer.channel_layer.receive(
        consumer.channel_name
    )
    return receive


async def _settle(consumer: Any, task: asyncio.Future[dict[str, Any]]) -> None:
    """End the layer receive ``task`` without cancelling it mid-read."""
    layer = consumer.channel_layer
    pending: asyncio.Future[dict[str, Any]] | None = task
    try:
        if task.done():
            _discard(consumer, task)
            pending = None
        elif not layer_is_down(layer):
            pending = await _wake(consumer, task)
        # else it is waiting out an outage (chanx.faults), not reading Redis.
    finally:
        # Cancelled ourselves, or gave up: never leave a receive running.
        if pending is not None and not pending.done():
            await _cancel(pending)
        buffers = getattr(layer, "receive_buffer", None)
        if isinstance(buffers, dict):
            # channels-redis: whatever is left for this channel (the local
            # wakeup, if a message came first) would stay there for good.
            buffers.pop(consumer.channel_name, None)


async def _wake(
    consumer: Any, task: asyncio.Future[dict[str, Any]]
) -> asyncio.Future[dict[str, Any]] | None:
    """Wake the receive, receive up to the wakeup; the receive still pending on failure."""
    if _wake_locally(consumer, {"type": WAKEUP, "route": "local"}):
        # A receive waiting for its turn returns within a few loop
        # iterations; one still pending is the one popping Redis for the
        # whole process, stuck until any message arrives: send one.
        for _ in range(_LOCAL_WAKE_ITERATIONS):
            if task.done():
                _discard(consumer, task, "local")
                return None
            await asyncio.sleep(0)
    return await _wake_through_layer(consumer, task)


def _wake_locally(consumer: Any, wakeup: WakeupMessage) -> bool:
    """channels-redis: hand the wakeup to the receive without a Redis round trip."""
    buffers = getattr(consumer.channel_layer, "receive_buffer", None)
    if not isinstance(buffers, dict):
        return False
    # A wakeup per leaving consumer through Redis would flood the process's
    # shared list under a mass disconnect: over its capacity, channels-redis
    # silently drops group messages for everyone on the process.
    buffers[consumer.channel_name].put_nowait(wakeup)
    return True


async def _wake_through_layer(
    consumer: Any, task: asyncio.Future[dict[str, Any]]
) -> asyncio.Future[dict[str, Any]] | None:
    layer = consumer.channel_layer
    wakeup: WakeupMessage = {"type": WAKEUP, "route": "layer"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT
    try:
        await within(layer.send(consumer.channel_name, wakeup), SETTLE_TIMEOUT)
    except Exception as exc:
        _logger(consumer).warning(
            "layer_receive_cancelled",
            reason="wakeup_failed",
            error_type=type(exc).__name__,
        )
        return task
    # Whatever arrives before this wakeup (a local one included) was meant
    # for this connection only; receiving up to it also keeps it from
    # lingering in the layer for a channel nobody reads.
    while True:
        done, _ = await asyncio.wait([task], timeout=max(deadline - loop.time(), 0))
        if not done:
            _logger(consumer).warning("layer_receive_cancelled", reason="timeout")
            return task
        if _discard(consumer, task, "layer"):
            return None
        task = asyncio.ensure_future(layer.receive(consumer.channel_name))


def _discard(
    consumer: Any,
    task: asyncio.Future[dict[str, Any]],
    route: str | None = None,
) -> bool:
    """Drop a finished receive's result; True if it failed or was ``route``'s wakeup."""
    if task.cancelled() or task.exception() is not None:
        return True
    message = task.result()
    if message.get("type") == WAKEUP:
        return message.get("route") == route
    _logger(consumer).debug("layer_message_discarded", type=message.get("type"))
    return False


async def _cancel(task: asyncio.Future[Any]) -> None:
    task.cancel()
    # asyncio.wait, not ``await task``: our own cancellation must propagate,
    # the task's outcome must not (the connection is over).
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


def _logger(consumer: Any) -> Any:
    # ``consumer.logger`` is set only once the connection was accepted.
    return getattr(consumer, "logger", None) or _log
