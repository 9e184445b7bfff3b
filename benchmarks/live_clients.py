"""The client side of the live benchmark: one asyncio process, ``websockets``.

Each workload connects to one server, waits for the frame every consumer sends
once the handshake is done, and measures one thing. Everything is bounded:
counts come from the caller, every wait has a timeout. No compression, so
the servers spend nothing on deflate.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect

from benchmarks import token_key

PING = json.dumps({"action": "ping"})
TIMEOUT = 30.0
#: Outstanding broadcasts the fan-out publisher allows: well under the
#: channel layers' default capacity of 100 messages per channel.
FANOUT_WINDOW = 40
#: Idle connections opened between two garbage collections.
IDLE_BATCH = 100


@dataclass
class Timed:
    """A rate and how busy the client process was while measuring it."""

    rate: float
    client_cpu: float


def _open(url: str, headers: dict[str, str] | None = None) -> connect:
    return connect(
        url,
        compression=None,
        proxy=None,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        additional_headers=headers,
        max_queue=None,
    )


async def _ready(ws: ClientConnection) -> dict[str, object]:
    frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    status = frame.get("payload", {}).get("status_code")
    if frame.get("action") != "authentication" or status != 200:
        raise RuntimeError(f"handshake not accepted: {frame}")
    return dict(frame)


@asynccontextmanager
async def opened(
    url: str, count: int, concurrency: int = 50
) -> AsyncIterator[list[ClientConnection]]:
    """``count`` connections to ``url``, each past its handshake frame."""
    gate = asyncio.Semaphore(concurrency)
    async with AsyncExitStack() as stack:

        async def one() -> ClientConnection:
            async with gate:
                ws = await stack.enter_async_context(_open(url))
                await _ready(ws)
                return ws

        yield list(await asyncio.gather(*(one() for _ in range(count))))


async def _timed(work: Callable[[], Awaitable[int]]) -> Timed:
    cpu, wall = time.process_time(), time.perf_counter()
    done = await asyncio.wait_for(work(), TIMEOUT * 4)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Timed(done / wall, cpu / wall)


async def echo_round_trip(url: str, clients: int, frames: int) -> Timed:
    """Frames/s with ``clients`` connections each waiting for every pong."""
    async with opened(url, clients) as sockets:

        async def client(ws: ClientConnection, count: int) -> None:
            for _ in range(count):
                await ws.send(PING)
                await ws.recv()

        await asyncio.gather(*(client(ws, 3) for ws in sockets))  # warm up

        async def work() -> int:
            await asyncio.gather(*(client(ws, frames) for ws in sockets))
            return clients * frames

        return await _timed(work)


async def echo_latencies(
    url: str, clients: int, seconds: float, most: int = 100_000
) -> list[float]:
    """Round-trip times (s) of ``clients`` connections pinging for ``seconds``.

    Each connection waits for every pong before its next ping; a connection
    stops after ``seconds`` or ``most`` round trips, whichever comes first.
    """
    times: list[float] = []
    async with opened(url, clients) as sockets:

        async def client(ws: ClientConnection) -> None:
            deadline = time.monotonic() + seconds
            for _ in range(most):
                if time.monotonic() >= deadline:
                    return
                started = time.perf_counter()
                await ws.send(PING)
                await asyncio.wait_for(ws.recv(), TIMEOUT)
                times.append(time.perf_counter() - started)

        await asyncio.gather(*(client(ws) for ws in sockets))
    return times


async def echo_pipelined(url: str, frames: int) -> Timed:
    """Frames/s with one connection sending without waiting for the pongs."""
    async with _open(url) as ws:
        await _ready(ws)

        async def work() -> int:
            async def sender() -> None:
                for _ in range(frames):
                    await ws.send(PING)

            async def receiver() -> None:
                for _ in range(frames):
                    await ws.recv()

            await asyncio.gather(sender(), receiver())
            return frames

        return await _timed(work)


@dataclass
class FanOut:
    """Deliveries per second and how many of ``expected`` never arrived."""

    rate: float
    delivered: int
    expected: int

    @property
    def lost(self) -> int:
        return self.expected - self.delivered


async def fan_out(url: str, clients: int, sends: int, quiet: float = 5.0) -> FanOut:
    """``sends`` broadcasts to ``clients`` group members (the sender is one).

    The first client publishes, keeping at most :data:`FANOUT_WINDOW`
    broadcasts ahead of its own deliveries. Counting stops once every client
    has all ``sends`` or nothing arrived for ``quiet`` seconds.
    """
    async with opened(url, clients) as sockets:
        counts = [0] * clients
        progress = asyncio.Event()
        last = [time.perf_counter()]

        async def reader(index: int, ws: ClientConnection) -> None:
            while counts[index] < sends:
                frame = await ws.recv()
                if not isinstance(frame, str) or '"fanout"' not in frame:
                    continue  # not a delivery (an error frame would land here)
                counts[index] += 1
                last[0] = time.perf_counter()
                if index == 0:
                    progress.set()

        async def publisher(ws: ClientConnection) -> None:
            for seq in range(sends):
                while seq - counts[0] >= FANOUT_WINDOW:
                    progress.clear()
                    try:
                        await asyncio.wait_for(progress.wait(), quiet)
                    except (asyncio.TimeoutError, TimeoutError):
                        return  # deliveries stopped: the rest count as lost
                await ws.send(json.dumps({"action": "broadcast", "payload": seq}))

        started = time.perf_counter()
        readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
        try:
            await publisher(sockets[0])
            await _until_done_or_quiet(readers, last, quiet)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        delivered = sum(counts)
        elapsed = last[0] - started
        rate = delivered / elapsed if delivered and elapsed > 0 else 0.0
        return FanOut(rate, delivered, clients * sends)


async def _until_done_or_quiet(
    readers: list[asyncio.Task[None]], last: list[float], quiet: float
) -> None:
    """Wait until every reader is done or none got a frame for ``quiet`` s."""
    while not all(r.done() for r in readers):
        if time.perf_counter() - last[0] > quiet:
            return
        await asyncio.sleep(0.05)


async def idle_memory(
    url: str,
    connections: int,
    rss: Callable[[], int],
    collect: Callable[[], Awaitable[None]],
) -> float:
    """Bytes of server RSS per idle connection (after a warm-up and a gc)."""
    # Warm up: imports, caches, pools and the span exporter's first batches.
    async with opened(url, min(connections, 200)):
        pass
    await collect()
    before = rss()
    async with AsyncExitStack() as stack:
        # In batches, each followed by a collection: what a handshake leaves
        # only for a while (ended spans waiting for export, garbage) is
        # reused by the next batch instead of adding to the high-water mark.
        for start in range(0, connections, IDLE_BATCH):
            batch = min(IDLE_BATCH, connections - start)
            await stack.enter_async_context(opened(url, batch))
            await collect()
        after = rss()
    return (after - before) / connections


async def connect_auth(url: str, connections: int, concurrency: int = 10) -> Timed:
    """Handshakes/s: connect with a DB token, wait for the 200 frame, close."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        headers = {"Authorization": f"Token {token_key(index)}"}
        async with gate, _open(url, headers) as ws:
            await _ready(ws)

    async def work() -> int:
        await asyncio.gather(*(one(i) for i in range(connections)))
        return connections

    return await _timed(work)
