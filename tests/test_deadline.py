"""``within()``: a deadline on one await, with a timer only once it waits."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from chanx.deadline import within
from chanx.faults import within as within_from_faults


class Timers(list[float]):
    """The delays of the timers the running loop is asked for, and the timers."""

    def __init__(self) -> None:
        super().__init__()
        self.handles: list[asyncio.TimerHandle] = []


@pytest.fixture
async def timers(monkeypatch: pytest.MonkeyPatch) -> Timers:
    asked = Timers()
    loop = asyncio.get_running_loop()
    call_later = loop.call_later

    def counting(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        asked.append(delay)
        handle = call_later(delay, callback, *args)
        asked.handles.append(handle)
        return handle

    monkeypatch.setattr(loop, "call_later", counting)
    return asked


async def _at_once(value: int) -> int:
    return value


async def _after_waiting(*values: int) -> int:
    # Each future is resolved by the loop: the coroutine waits once per value
    # and gets it back through the task.
    loop = asyncio.get_running_loop()
    total = 0
    for value in values:
        future: asyncio.Future[int] = loop.create_future()
        loop.call_soon(future.set_result, value)
        total += await future
    return total


def test_it_is_still_importable_from_faults() -> None:
    assert within_from_faults is within


async def test_an_await_that_never_waits_gets_no_timer(timers: Timers) -> None:
    assert await within(_at_once(7), 5.0) == 7
    assert timers == []


async def test_an_await_that_waits_is_bounded_and_gets_its_values(
    timers: Timers,
) -> None:
    assert await within(_after_waiting(1, 2, 3), 5.0) == 6
    assert timers == [5.0]


async def test_the_timer_is_cancelled_once_the_await_is_done(timers: Timers) -> None:
    await within(_after_waiting(1), 0.05)
    [timer] = timers.handles
    # Still armed, it would cancel this task in 50 ms.
    assert timer.cancelled()


async def test_an_await_that_waits_too_long_raises_timeout_error() -> None:
    never = asyncio.Event()
    with pytest.raises(TimeoutError):
        await within(never.wait(), 0.05)
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0  # the expiry's cancel was taken back
    # The task goes on normally afterwards.
    assert await within(_after_waiting(4), 1.0) == 4


async def test_a_cancellation_from_elsewhere_is_not_a_timeout() -> None:
    started = asyncio.Event()

    async def waiter() -> None:
        started.set()
        await within(asyncio.Event().wait(), 10.0)

    task = asyncio.ensure_future(waiter())
    await started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_errors_before_and_after_waiting_go_through_unchanged() -> None:
    async def fails_at_once() -> None:
        raise ValueError("at once")

    async def fails_after_waiting() -> None:
        await asyncio.sleep(0)
        raise KeyError("later")

    with pytest.raises(ValueError, match="at once"):
        await within(fails_at_once(), 1.0)
    with pytest.raises(KeyError, match="later"):
        await within(fails_after_waiting(), 1.0)


async def test_the_awaitable_can_handle_a_cancellation_thrown_into_it() -> None:
    cleaned_up = asyncio.Event()

    async def cleans_up() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.set()

    with pytest.raises(TimeoutError):
        await within(cleans_up(), 0.05)
    assert cleaned_up.is_set()


async def test_no_timeout_just_awaits(timers: Timers) -> None:
    assert await within(_after_waiting(5), None) == 5
    assert timers == []


async def test_a_future_and_an_awaitable_object_work_like_a_coroutine() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    loop.call_soon(future.set_result, "done")
    assert await within(future, 1.0) == "done"

    class Ready:
        def __await__(self) -> Any:
            return (yield from asyncio.sleep(0, result="ready").__await__())

    assert await within(Ready(), 1.0) == "ready"
    never: asyncio.Future[None] = loop.create_future()
    with pytest.raises(TimeoutError):
        await within(never, 0.01)
