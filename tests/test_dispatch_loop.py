"""The dispatch loop hands every client and layer message to dispatch, once."""

from __future__ import annotations

import asyncio
import functools
import gc
import tracemalloc
from typing import Any

import pytest
from channels.exceptions import StopConsumer
from channels.layers import InMemoryChannelLayer
from channels.utils import await_many_dispatch

from chanx.dispatch import dispatch_messages


class Consumer:
    """What dispatch_messages needs of a consumer; records what it dispatched."""

    def __init__(self, layer: InMemoryChannelLayer | None) -> None:
        self.channel_layer = layer
        self.channel_name = "inbox.one"
        self.seen: list[str] = []

    async def dispatch(self, message: dict[str, Any]) -> None:
        self.seen.append(message["n"])
        if message["n"] == "stop":
            raise StopConsumer


async def run(consumer: Consumer, client: asyncio.Queue[dict[str, Any]]) -> None:
    await asyncio.wait_for(dispatch_messages(consumer, client.get), timeout=10)


async def test_messages_of_both_sources_are_all_dispatched_once() -> None:
    layer = InMemoryChannelLayer()
    client: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    consumer = Consumer(layer)
    all_in = asyncio.Event()
    original = consumer.dispatch

    async def counting_dispatch(message: dict[str, Any]) -> None:
        await original(message)
        if len(consumer.seen) == 100:
            all_in.set()

    consumer.dispatch = counting_dispatch  # type: ignore[method-assign]
    loop = asyncio.create_task(run(consumer, client))
    for index in range(50):
        # Both sources ready in the same loop turn, over and over.
        await layer.send(consumer.channel_name, {"type": "x", "n": f"layer{index}"})
        client.put_nowait({"type": "x", "n": f"client{index}"})
        await asyncio.sleep(0)
    await asyncio.wait_for(all_in.wait(), timeout=10)
    client.put_nowait({"type": "x", "n": "stop"})
    with pytest.raises(StopConsumer):
        await loop
    # Every message once, each source in its own order, then the stop.
    dispatched = consumer.seen[:-1]
    assert [n for n in dispatched if n.startswith("client")] == [
        f"client{i}" for i in range(50)
    ]
    assert [n for n in dispatched if n.startswith("layer")] == [
        f"layer{i}" for i in range(50)
    ]
    assert consumer.seen[-1] == "stop"


class WatchedLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """Notes when a receive has returned a message."""

    returned = False

    async def receive(self, channel: str) -> dict[str, Any]:
        message: dict[str, Any] = await super().receive(channel)
        self.returned = True
        return message


async def test_a_message_that_arrives_during_dispatch_waits_its_turn() -> None:
    layer = WatchedLayer()
    client: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    consumer = Consumer(layer)
    order: list[str] = []
    event_handled = asyncio.Event()
    original = consumer.dispatch

    async def slow_dispatch(message: dict[str, Any]) -> None:
        order.append(f"start {message['n']}")
        if message["n"] == "first":
            # The layer message lands, and its receive task finishes, while
            # this one is being handled (nobody waits on the loop then).
            await layer.send(consumer.channel_name, {"type": "x", "n": "event"})
            for _ in range(100):
                if layer.returned:
                    break
                await asyncio.sleep(0)
            assert layer.returned, "the layer receive never returned"
            # Its done callbacks run in the next loop iteration.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        order.append(f"end {message['n']}")
        if message["n"] == "event":
            event_handled.set()
        await original(message)

    consumer.dispatch = slow_dispatch  # type: ignore[method-assign]
    client.put_nowait({"type": "x", "n": "first"})
    loop = asyncio.create_task(run(consumer, client))
    await asyncio.wait_for(event_handled.wait(), timeout=10)
    client.put_nowait({"type": "x", "n": "stop"})
    with pytest.raises(StopConsumer):
        await loop
    assert order[:4] == ["start first", "end first", "start event", "end event"]


async def test_without_a_layer_only_the_client_is_read() -> None:
    client: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    consumer = Consumer(None)
    for name in ("a", "b", "stop"):
        client.put_nowait({"type": "x", "n": name})
    with pytest.raises(StopConsumer):
        await run(consumer, client)
    assert consumer.seen == ["a", "b", "stop"]


async def _idle_loops_bytes(loop_factory: Any, count: int, module: str) -> int:
    """Bytes ``count`` idle dispatch loops (client and layer waiting) keep,
    counting what was allocated with ``module`` on the stack."""
    layer = InMemoryChannelLayer()
    clients: list[asyncio.Queue[dict[str, Any]]] = [
        asyncio.Queue() for _ in range(count)
    ]
    consumers = [Consumer(layer) for _ in range(count)]
    for index, consumer in enumerate(consumers):
        consumer.channel_name = f"inbox.{index}"
    gc.collect()
    tracemalloc.start(25)
    try:
        tasks = [
            asyncio.create_task(loop_factory(consumer, client))
            for consumer, client in zip(consumers, clients, strict=True)
        ]
        for _ in range(5):  # every loop reaches its wait
            await asyncio.sleep(0)
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    kept = snapshot.filter_traces([tracemalloc.Filter(True, module, all_frames=True)])
    return sum(stat.size for stat in kept.statistics("filename"))


async def test_an_idle_loop_keeps_less_than_channels_own() -> None:
    # Every idle connection holds its dispatch loop: its tasks, their
    # callbacks and what it waits on. Channels' await_many_dispatch is the
    # yardstick (the idle-memory target compares with plain Channels).
    async def chanx_loop(consumer: Consumer, client: asyncio.Queue[Any]) -> None:
        await dispatch_messages(consumer, client.get)

    async def channels_loop(consumer: Consumer, client: asyncio.Queue[Any]) -> None:
        layer = consumer.channel_layer
        assert layer is not None
        receive = functools.partial(layer.receive, consumer.channel_name)
        await await_many_dispatch([client.get, receive], consumer.dispatch)

    for loop, module in ((chanx_loop, "chanx"), (channels_loop, "channels")):
        # Warm-up: first-use allocations (the layer's, asyncio's) are not
        # per connection.
        await _idle_loops_bytes(loop, 20, f"*/{module}/*.py")
    count = 200
    chanx_bytes = await _idle_loops_bytes(chanx_loop, count, "*/chanx/dispatch.py")
    channels_bytes = await _idle_loops_bytes(
        channels_loop, count, "*/channels/utils.py"
    )
    assert chanx_bytes < 0.75 * channels_bytes, (chanx_bytes, channels_bytes)
