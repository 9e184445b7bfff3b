"""Liveness and readiness probes.

``/healthz`` answers as long as the process serves requests. ``/readyz`` also
sends a message through the default channel layer to itself, so a worker
whose Redis is unreachable is taken out of the load balancer.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

import structlog
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chanx.hooks import get_hooks
from chanx.telemetry.config import telemetry_config

if TYPE_CHECKING:
    from chanx.telemetry.metrics import ChanxMetrics

__all__ = ["channel_layer_ready", "healthz", "readiness", "readyz"]

_log = structlog.get_logger("chanx.telemetry")

# The message type of the readiness round trip (never reaches a consumer).
_READYZ_TYPE = "chanx.readyz"


class _TokenMismatch(Exception):
    """The round trip returned someone else's message."""


async def channel_layer_ready(timeout: float) -> tuple[bool, str]:
    """Send a message to a fresh channel of the default layer and receive it.

    Args:
        timeout: Seconds the whole round trip may take.

    Returns:
        ``(True, "ok")``, ``(True, "no_channel_layer")`` when no layer is
        configured, or ``(False, "channel_layer_timeout")`` /
        ``(False, "channel_layer_error")``. Never raises: failures are logged
        as ``readyz_failed``.
    """
    try:
        layer = get_channel_layer()
        if layer is None:
            return True, "no_channel_layer"
        await asyncio.wait_for(_round_trip(layer), timeout)
    except asyncio.TimeoutError:
        _log.warning(
            "readyz_failed", reason="channel_layer_timeout", error_type="TimeoutError"
        )
        return False, "channel_layer_timeout"
    except Exception as exc:
        _log.warning(
            "readyz_failed",
            reason="channel_layer_error",
            error_type=type(exc).__name__,
        )
        return False, "channel_layer_error"
    return True, "ok"


async def _round_trip(layer: Any) -> None:
    channel = await layer.new_channel()
    token = secrets.token_hex(8)
    await layer.send(channel, {"type": _READYZ_TYPE, "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise _TokenMismatch()


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """``GET /healthz``: 200 ``{"status": "ok"}`` while the process serves."""
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> HttpResponse:
    """``GET /readyz``: 200 ``{"status": "ok"}``, or 503 with the failure reason.

    Waits at most ``CHANX["TELEMETRY"]["READYZ_TIMEOUT"]`` seconds.
    """
    # Written out rather than decorated: Django 4.2's decorators are sync-only.
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    status, body = await readiness()
    response = JsonResponse(body, status=status)
    add_never_cache_headers(response)
    return response


async def readiness() -> tuple[int, dict[str, str]]:
    """The ``/readyz`` status code and JSON body (shared with the ASGI app)."""
    ready, reason = await channel_layer_ready(telemetry_config().readyz_timeout)
    _count_check("ok" if ready else reason)
    if ready:
        return 200, {"status": "ok"}
    return 503, {"status": "unavailable", "reason": reason}


def _count_check(outcome: str) -> None:
    """Count one readiness result in ``chanx_readiness_checks_total``; never raises."""
    try:
        metrics = _installed_metrics()
        if metrics is not None:
            metrics.readiness_checks.labels(outcome).inc()
    except Exception:
        _log.error(
            "telemetry_hook_failed", signal="metrics", hook="readiness", exc_info=True
        )


def _installed_metrics() -> ChanxMetrics | None:
    # The registry of the installed hooks' metrics part (``install(registry=...)``),
    # so the count sits next to the other chanx metrics; none when metrics are off.
    hooks: Any = get_hooks()
    hooks = getattr(hooks, "inner", hooks)
    for signal, part in getattr(hooks, "parts", ()):
        if signal == "metrics":
            from chanx.telemetry.metric_hooks import MetricsHooks

            if isinstance(part, MetricsHooks):
                return part.metrics
    return None
