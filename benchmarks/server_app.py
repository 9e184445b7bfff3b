"""The ASGI app every benchmark server runs: chanx, plain Channels and raw ASGI.

Run it as ``uvicorn benchmarks.server_app:application`` with
``DJANGO_SETTINGS_MODULE=benchmarks.server_settings``. WebSocket paths:

==================  ====================================================
``/ws/chanx/echo/``  chanx consumer: ``ping`` -> ``pong``
``/ws/plain/echo/``  Channels ``AsyncJsonWebsocketConsumer``, same frames
``/ws/raw/echo/``    a bare ASGI callable, same frames
``/ws/*/fanout/``    every client joins one group; ``broadcast`` sends a
                     group message to all of them (the sender included)
``/ws/*/auth/``      DRF ``TokenAuthentication`` (chanx) or the same token
                     lookup by hand (Channels), ``Authorization`` header
==================  ====================================================

Every consumer sends one frame when the handshake is done (chanx's
``authentication`` frame, the same shape elsewhere), so clients know the
server holds the connection. HTTP ``GET /gc`` exports pending spans and runs
``gc.collect()`` (before a memory reading); ``GET /gcstats`` answers the
collections each generation has had since the server started and the
seconds they took, as JSON; anything else over HTTP is a 404.

``python -m benchmarks.server_app seed N`` migrates the database and creates
users ``bench0..N-1`` with the tokens :func:`benchmarks.token_key` names.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Literal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.server_settings")

from django.core.asgi import get_asgi_application

# Sets up Django before the consumers import models.
get_asgi_application()

from channels.db import database_sync_to_async  # noqa: E402
from channels.generic.websocket import (  # noqa: E402
    AsyncJsonWebsocketConsumer as PlainConsumer,
)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402
from rest_framework.authentication import TokenAuthentication  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402

from benchmarks import token_key  # noqa: E402
from chanx.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from chanx.messages.base import BaseGroupMessage, BaseMessage  # noqa: E402
from chanx.messages.incoming import PingMessage  # noqa: E402
from chanx.messages.outgoing import PongMessage  # noqa: E402

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: The group every fan-out connection joins.
FANOUT_GROUP = "fanout"
PONG = {"action": "pong", "payload": None}
READY = {
    "action": "authentication",
    "payload": {"status_code": 200, "status_text": "OK", "data": {"detail": "OK"}},
}
DENIED = {**READY, "payload": {"status_code": 401, "status_text": "Unauthorized"}}


# chanx ----------------------------------------------------------------------


class ChanxEcho(AsyncJsonWebsocketConsumer[PingMessage]):
    """Answers ``ping`` with ``pong``; open to anyone (production flags otherwise)."""

    authentication_classes: Any = []
    permission_classes: Any = []

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        await self.send_message(PongMessage())


class BroadcastMessage(BaseMessage):
    """Asks the server to send one group message (``payload``: a sequence number)."""

    action: Literal["broadcast"] = "broadcast"
    payload: int


class FanoutMessage(BaseGroupMessage):
    """What every member of the group receives."""

    action: Literal["fanout"] = "fanout"
    payload: int


class ChanxFanout(AsyncJsonWebsocketConsumer[BroadcastMessage, None, FanoutMessage]):
    """Joins :data:`FANOUT_GROUP`; each ``broadcast`` reaches every member."""

    authentication_classes: Any = []
    permission_classes: Any = []
    groups = [FANOUT_GROUP]

    async def receive_message(self, message: BroadcastMessage, **kwargs: Any) -> None:
        await self.send_group_message(
            FanoutMessage(payload=message.payload), exclude_current=False
        )


class ChanxAuth(AsyncJsonWebsocketConsumer[PingMessage]):
    """DRF token authentication against the database."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    async def receive_message(self, message: PingMessage, **kwargs: Any) -> None:
        await self.send_message(PongMessage())


# plain Channels --------------------------------------------------------------


class PlainEcho(PlainConsumer):  # type: ignore[misc]
    """The same echo written directly on Channels."""

    async def connect(self) -> None:
        await self.accept()
        await self.send_json(READY)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("action") == "ping":
            await self.send_json(PONG)


class PlainFanout(PlainEcho):
    """The same fan-out on Channels: ``groups`` are joined on connect."""

    groups = [FANOUT_GROUP]

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("action") == "broadcast":
            event = {"type": "fanout.message", "payload": content.get("payload")}
            await self.channel_layer.group_send(FANOUT_GROUP, event)

    async def fanout_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"action": "fanout", "payload": event["payload"]})


def _header_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            return key.strip() if scheme.lower() == "token" else None
    return None


def _user_for_sync(key: str) -> Any:
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


_user_for = database_sync_to_async(_user_for_sync)


class PlainAuth(PlainEcho):
    """The token check chanx's ``ChanxAuth`` does, written by hand."""

    async def connect(self) -> None:
        key = _header_token(self.scope)
        user = None if key is None else await _user_for(key)
        await self.accept()
        if user is None:
            await self.send_json(DENIED)
            await self.close(4401)
            return
        self.scope["user"] = user
        await self.send_json(READY)


# raw ASGI --------------------------------------------------------------------


async def raw_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The least a server can do for the same frames."""
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": json.dumps(READY)})
        elif kind == "websocket.receive":
            content = json.loads(message.get("text") or "{}")
            if content.get("action") == "ping":
                await send({"type": "websocket.send", "text": json.dumps(PONG)})
        elif kind == "websocket.disconnect":
            return


class _GcClock:
    """Counts collections and the time they take, per generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self.counts[generation] += 1
        self.seconds[generation] += time.perf_counter() - self._started

    def report(self) -> bytes:
        return json.dumps({"counts": self.counts, "seconds": self.seconds}).encode()


_gc_clock = _GcClock()


async def http_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /gc`` collects garbage and answers 200; the rest is 404."""
    if scope["path"] == "/gcstats":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": _gc_clock.report()})
        return
    found = scope["path"] == "/gc"
    if found:
        # Spans of ended connections wait in the batch processor's queue;
        # export them first, so they are not counted as connection memory.
        flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if flush is not None:
            flush(10_000)
        gc.collect()
    await send(
        {
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok" if found else b""})


websocket_router = URLRouter(
    [
        path("ws/chanx/echo/", ChanxEcho.as_asgi()),
        path("ws/plain/echo/", PlainEcho.as_asgi()),
        path("ws/chanx/fanout/", ChanxFanout.as_asgi()),
        path("ws/plain/fanout/", PlainFanout.as_asgi()),
        path("ws/chanx/auth/", ChanxAuth.as_asgi()),
        path("ws/plain/auth/", PlainAuth.as_asgi()),
    ]
)
channels_app = ProtocolTypeRouter({"http": http_app, "websocket": websocket_router})


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw ASGI for ``/ws/raw/echo/``, Channels for everything else."""
    if scope["type"] == "websocket" and scope["path"] == "/ws/raw/echo/":
        await raw_echo(scope, receive, send)
        return
    await channels_app(scope, receive, send)


class _DroppingExporter(SpanExporter):
    """Takes every batch and encodes nothing (``BENCH_SPAN_EXPORT=drop``)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


if os.environ.get("BENCH_TELEMETRY", "on") == "on" and os.environ.get(
    "OTEL_EXPORTER_OTLP_ENDPOINT"
):
    from chanx.telemetry import setup

    drop = os.environ.get("BENCH_SPAN_EXPORT") == "drop"
    setup(service_name="chanx-bench", exporter=_DroppingExporter() if drop else None)


def seed(users: int) -> None:
    """Migrate and create ``users`` users with their tokens (idempotent)."""
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    existing = set(User.objects.values_list("username", flat=True))
    new = [User(username=f"bench{i}") for i in range(users)]
    User.objects.bulk_create([u for u in new if u.username not in existing])
    by_name = dict(User.objects.values_list("username", "pk"))
    have = set(Token.objects.values_list("key", flat=True))
    Token.objects.bulk_create(
        Token(key=token_key(i), user_id=by_name[f"bench{i}"])
        for i in range(users)
        if token_key(i) not in have
    )


if __name__ == "__main__":
    if sys.argv[1:2] != ["seed"] or len(sys.argv) != 3:
        sys.exit("usage: python -m benchmarks.server_app seed N")
    seed(int(sys.argv[2]))
