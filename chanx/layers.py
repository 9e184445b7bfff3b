"""Channel-layer configuration checks that would otherwise fail in production.

redis-py 8 times socket reads out after 5 seconds by default, while
channels-redis' ``RedisChannelLayer`` blocks up to 5 seconds waiting for a
message: every idle consumer then dies with ``TimeoutError`` (channels-redis
issue 422). chanx warns once per layer, at the first connection, with the fix.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import structlog

__all__ = ["check_channel_layer"]

_log = structlog.get_logger("chanx.layers")
_checked: set[int] = set()


def _redis_major() -> int:
    try:
        return int(version("redis").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return 0


def _lacks_socket_timeout(host: Any) -> bool:
    if not isinstance(host, dict):
        return False
    return "socket_timeout" not in host and "socket_timeout" not in str(
        host.get("address", "")
    )


def check_channel_layer(layer: Any) -> None:
    """Log ``redis_socket_timeout_default`` once if ``layer`` will drop idle consumers."""
    if layer is None or id(layer) in _checked:
        return
    _checked.add(id(layer))
    if type(layer).__module__ != "channels_redis.core" or _redis_major() < 8:
        return
    if any(_lacks_socket_timeout(host) for host in getattr(layer, "hosts", ())):
        _log.warning(
            "redis_socket_timeout_default",
            hint='give each CHANNEL_LAYERS host "socket_timeout": None, e.g. '
            '{"address": REDIS_URL, "socket_timeout": None}: redis-py 8 times out '
            "channels-redis' 5 s blocking reads and idle consumers disconnect",
        )
