"""Per-frame cost of a chanx consumer vs a plain Channels consumer, in process.

Both echo ``{"action": "ping"}`` with a pong through Channels' test
communicator (no server, no socket), so only consumer-side work is compared.
Runs are interleaved and the medians compared; the ratio is what counts, the
absolute numbers depend on the machine. Run: ``make bench-inprocess``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "example")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402
import structlog  # noqa: E402
from django.test import override_settings  # noqa: E402

django.setup()
structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING)
)

from channels.generic.websocket import AsyncJsonWebsocketConsumer as PlainConsumer  # noqa: E402
from channels.testing.websocket import WebsocketCommunicator  # noqa: E402

from chanx.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from chanx.messages.incoming import PingMessage  # noqa: E402
from chanx.messages.outgoing import PongMessage  # noqa: E402

FRAMES = int(os.environ.get("FRAMES", "2000"))
ROUNDS = int(os.environ.get("ROUNDS", "7"))


class PlainEcho(PlainConsumer):  # type: ignore[misc]
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"action": "pong", "payload": None})


class ChanxEcho(AsyncJsonWebsocketConsumer[PingMessage]):
    authentication_classes: Any = []
    permission_classes: Any = []
    send_completion = False
    send_authentication_message = False
    log_received_message = False
    log_sent_message = False
    # Frames arrive as fast as they are answered, on purpose.
    rate_limit = False

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        await self.send_message(PongMessage())


async def microseconds_per_frame(consumer: type[Any]) -> float:
    communicator = WebsocketCommunicator(consumer.as_asgi(), "/ws/")
    await communicator.connect()
    started = time.perf_counter()
    for _ in range(FRAMES):
        await communicator.send_to(text_data='{"action":"ping"}')
        await communicator.receive_from()
    elapsed = time.perf_counter() - started
    await communicator.disconnect()
    return elapsed / FRAMES * 1e6


async def main() -> None:
    samples: dict[str, list[float]] = {"plain": [], "chanx": [], "chanx_hop": []}
    per_frame_hop = {"CLOSE_OLD_CONNECTIONS_INTERVAL": 0}
    for _ in range(ROUNDS):
        samples["plain"].append(await microseconds_per_frame(PlainEcho))
        samples["chanx"].append(await microseconds_per_frame(ChanxEcho))
        with override_settings(CHANX=per_frame_hop):
            samples["chanx_hop"].append(await microseconds_per_frame(ChanxEcho))
    plain, chanx, hop = (statistics.median(samples[k]) for k in samples)
    print(f"frames={FRAMES} rounds={ROUNDS} (medians, interleaved)")
    print(f"plain Channels echo:                       {plain:8.1f} us/frame")
    print(f"chanx echo (default settings):             {chanx:8.1f} us/frame")
    print(f"chanx echo, CLOSE_OLD_CONNECTIONS_INTERVAL=0: {hop:8.1f} us/frame")
    print(f"chanx throughput / plain Channels = {plain / chanx:.2f}")
    print(f"chanx (per-frame DB hop) / plain  = {plain / hop:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
