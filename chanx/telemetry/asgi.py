"""Metrics and probes as a plain ASGI app, in front of (or instead of) Django.

For deployments that serve WebSockets only, or want ``/metrics`` answered
without Django's middleware and URL routing::

    application = ProtocolTypeRouter({
        "http": TelemetryHTTPApp(get_asgi_application()),
        "websocket": router,
    })

The same access rules as :func:`chanx.telemetry.exposition.metrics_view`
apply, with the client address from ``scope["client"]``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry

from chanx.telemetry.config import telemetry_config
from chanx.telemetry.exposition import check_access, render_metrics
from chanx.telemetry.health import readiness

__all__ = ["TelemetryHTTPApp"]

# Loose on purpose: servers and frameworks each type ASGI messages their own way.
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[Any]]
Headers = Iterable[tuple[bytes, bytes]]

# What Django's never_cache sends: probes and scrapes must see fresh answers.
_NO_CACHE = (
    b"cache-control",
    b"max-age=0, no-cache, no-store, must-revalidate, private",
)
_TEXT = "text/plain; charset=utf-8"


class TelemetryHTTPApp:
    """Answers ``GET`` on the metrics and probe paths; passes the rest to ``app``.

    Args:
        app: The ASGI app for every other request and for lifespan events.
            Without one, other requests get 404.
        registry: What ``/metrics`` exposes in a single process (default: the
            global registry; multiprocess mode merges all workers instead).
        metrics_path: Path of the Prometheus scrape endpoint.
        healthz_path: Path of the liveness probe.
        readyz_path: Path of the readiness probe.
    """

    def __init__(
        self,
        app: ASGIApp | None = None,
        *,
        registry: CollectorRegistry | None = None,
        metrics_path: str = "/metrics",
        healthz_path: str = "/healthz",
        readyz_path: str = "/readyz",
    ) -> None:
        self.app = app
        self.registry = registry
        self._routes: dict[str, Callable[[Scope, Send], Awaitable[None]]] = {
            metrics_path: self._metrics,
            healthz_path: self._healthz,
            readyz_path: self._readyz,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope.get("method") == "GET":
            handler = self._routes.get(scope.get("path", ""))
            if handler is not None:
                await handler(scope, send)
                return
        if self.app is not None:
            await self.app(scope, receive, send)
        elif kind == "http":
            await _respond(send, 404, b"Not Found", _TEXT)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        else:
            raise ValueError(f"TelemetryHTTPApp cannot serve {kind!r} connections")

    async def _metrics(self, scope: Scope, send: Send) -> None:
        client = scope.get("client")
        status = check_access(
            client[0] if client else None,
            _header(scope, b"authorization"),
            telemetry_config(),
        )
        if status == 401:
            challenge = [(b"www-authenticate", b"Bearer")]
            await _respond(send, 401, b"Unauthorized", _TEXT, challenge)
        elif status is not None:
            await _respond(send, status, b"Forbidden", _TEXT)
        else:
            # Off the event loop: merging multiprocess files reads the disk.
            body, content_type = await asyncio.to_thread(render_metrics, self.registry)
            await _respond(send, 200, body, content_type)

    async def _healthz(self, scope: Scope, send: Send) -> None:
        await _respond_json(send, 200, {"status": "ok"})

    async def _readyz(self, scope: Scope, send: Send) -> None:
        status, body = await readiness()
        await _respond_json(send, status, body)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _respond_json(send: Send, status: int, body: dict[str, str]) -> None:
    await _respond(send, status, json.dumps(body).encode(), "application/json")


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: Headers = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", str(len(body)).encode()),
                _NO_CACHE,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to start or stop; acknowledge so servers do not warn.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
